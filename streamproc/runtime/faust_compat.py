"""Every use streamproc makes of Faust's and aiokafka's internals, in one place.

Faust 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no way to change
it. A broker that holds an empty fetch until that time (Tansu re-checks for data only on a
timer) then delays records by up to 1.5 s, and aiokafka sends no second fetch to the same
broker meanwhile. ``FetchWaitApp`` swaps in a consumer that waits ``fetch_max_wait_ms``
instead (``set_fetch_max_wait``); ``streamproc bench`` measures the effect on latency.

What this relies on, for the versions pinned in ``pyproject.toml`` (faust-streaming 0.15,
aiokafka 0.14); ``tests/unit/runtime/test_faust_compat.py`` checks each item:

* ``faust.App._new_transport()`` builds the transport (overridden here);
* ``faust.transport.drivers.aiokafka``: ``Transport.Consumer`` is the consumer class,
  ``Consumer._new_consumer_thread()`` builds an ``AIOKafkaConsumerThread``, whose
  ``_create_worker_consumer(transport)`` builds the ``aiokafka.AIOKafkaConsumer``;
* ``AIOKafkaConsumer._fetch_max_wait_ms`` holds the wait, and ``start()`` hands it to the fetcher;
* ``app.conf`` keeps an attribute it does not know (``FETCH_MAX_WAIT_CONF``).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from streamproc.errors import ConfigError

FETCH_MAX_WAIT_CONF = "streamproc_fetch_max_wait_ms"
"""The attribute of ``app.conf`` that carries the wait to the consumer thread."""


def set_fetch_max_wait(app: faust.App, ms: int) -> None:
    """Make the consumers ``app`` builds wait at most ``ms`` for an empty fetch."""
    setattr(app.conf, FETCH_MAX_WAIT_CONF, ms)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise ConfigError("this aiokafka version has no _fetch_max_wait_ms; pin aiokafka<0.15")
        consumer._fetch_max_wait_ms = getattr(self.app.conf, FETCH_MAX_WAIT_CONF)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class FetchWaitApp(faust.App):
    """A Faust app whose consumer waits at most ``set_fetch_max_wait``'s milliseconds for an empty fetch."""

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
