"""The Faust app: built from settings, with no logic of its own.

Faust 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no way to change
it. A broker that holds an empty fetch until that time (Tansu re-checks for data only on a
timer) then delays records by up to 1.5 s, and aiokafka sends no second fetch to the same
broker meanwhile. ``App`` below swaps in a consumer with ``STREAMPROC_FETCH_MAX_WAIT_MS``;
``streamproc bench`` measures the effect on latency.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from streamproc.errors import ConfigError
from streamproc.runtime.admin import bootstrap
from streamproc.settings import Settings


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise ConfigError("this aiokafka version has no _fetch_max_wait_ms; pin aiokafka<0.15")
        consumer._fetch_max_wait_ms = self.app.conf.streamproc_fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app whose consumer waits at most ``fetch_max_wait_ms`` for an empty fetch."""

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings``; agents are attached by ``runtime.agents``.

    Faust's data directory is ``<data_dir>/<app_id>``, never the current directory.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = App(
        settings.app_id,
        broker=[f"kafka://{h}" for h in bootstrap(settings.kafka_url).split(",")],
        store="memory://",
        datadir=settings.data_dir / settings.app_id,
        web_port=settings.web_port,
        web_host="127.0.0.1",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
    )
    app.conf.streamproc_fetch_max_wait_ms = settings.fetch_max_wait_ms
    return app
