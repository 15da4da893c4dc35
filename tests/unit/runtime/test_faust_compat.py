"""The Faust and aiokafka internals ``runtime.faust_compat`` relies on are still there and behave as it assumes.

A failure here after an upgrade names the versions installed and what changed: adapt
``streamproc/runtime/faust_compat.py`` (and nothing else) before raising the pins in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import aiokafka
import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streamproc.runtime import faust_compat
from streamproc.runtime.app import create_app
from streamproc.settings import Settings

VERSIONS = f"faust-streaming {faust.__version__} with aiokafka {aiokafka.__version__}"


def broke(what: str) -> str:
    return f"{VERSIONS}: {what}; streamproc/runtime/faust_compat.py relies on it"


@pytest.mark.parametrize(("owner", "name", "params"), [
    (faust.App, "_new_transport", ["self"]),
    (faust_aiokafka.Consumer, "_new_consumer_thread", ["self"]),
    (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", ["self", "transport"]),
])
def test_the_overridden_methods_keep_their_signatures(owner: type, name: str, params: list[str]) -> None:
    method: Callable[..., object] | None = getattr(owner, name, None)
    assert callable(method), broke(f"{owner.__qualname__}.{name} is gone")
    found = list(inspect.signature(method).parameters)
    assert found == params, broke(f"{owner.__qualname__}.{name} now takes {found}, not {params}")


def test_the_transport_names_its_consumer_class() -> None:
    assert getattr(faust_aiokafka.Transport, "Consumer", None) is faust_aiokafka.Consumer, \
        broke("Transport.Consumer no longer names the consumer class the transport builds")


def test_faust_still_builds_its_consumer_thread_as_the_override_copies() -> None:
    source = inspect.getsource(faust_aiokafka.Consumer._new_consumer_thread)
    assert "AIOKafkaConsumerThread(self, loop=self.loop, beacon=self.beacon)" in source, \
        broke("Consumer._new_consumer_thread() builds its thread with other arguments than the override's copy")


def test_aiokafka_hands_the_stored_wait_to_its_fetcher_on_start() -> None:
    source = inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source, \
        broke("AIOKafkaConsumer.start() no longer builds its Fetcher from self._fetch_max_wait_ms")


def test_the_app_builds_an_aiokafka_consumer_with_the_configured_wait() -> None:
    async def build() -> aiokafka.AIOKafkaConsumer:
        app = create_app(Settings(kafka_url="kafka://127.0.0.1:9", fetch_max_wait_ms=37))
        thread = app.consumer._new_consumer_thread()
        assert isinstance(thread, faust_compat._ConsumerThread), \
            broke(f"the app's consumer thread is a {type(thread).__qualname__}: the transport hook is bypassed")
        return thread._create_worker_consumer(app.transport)

    consumer = asyncio.run(build())
    assert isinstance(consumer, aiokafka.AIOKafkaConsumer), broke(f"the worker consumer is a {type(consumer)}")
    assert getattr(consumer, "_fetch_max_wait_ms", None) == 37, \
        broke("AIOKafkaConsumer keeps no _fetch_max_wait_ms, or the app's wait did not reach it")
