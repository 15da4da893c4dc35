"""Fixtures that start the real components: a Tansu broker and a redis-server, on free ports.

A broker is started per test that needs one (Tansu keeps topics in memory, so a fresh broker
is a clean slate in about half a second); one Redis serves the session and is flushed before
each test. Workers run as real ``streamproc worker`` child processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamproc.contracts import Contracts, load_contracts
from streamproc.runtime.admin import create_topics
from streamproc.settings import DEFAULT_TOPICS_DIR
from streamproc.tools.stack import start_broker, start_redis, start_worker, stop_process
from tests.live import FIGURES, wait_for

FAST_WORKER = {"STREAMPROC_BROKER_SESSION_TIMEOUT_S": "10", "STREAMPROC_BROKER_REBALANCE_TIMEOUT_S": "10",
               "STREAMPROC_ENVIRONMENT": "test",
               "STREAMPROC_LOG_LEVEL": os.environ.get("STREAMPROC_TEST_LOG_LEVEL", "info")}


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return load_contracts(DEFAULT_TOPICS_DIR)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop_process(proc)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture
def broker(tmp_path: Path, contracts: Contracts) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = start_broker(tmp_path)
    asyncio.run(create_topics(url, contracts))
    yield proc, url
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
    stop_process(proc)


@pytest.fixture
def kafka_url(broker: tuple[subprocess.Popen[bytes], str]) -> str:
    return broker[1]


@pytest.fixture
def broker_proc(broker: tuple[subprocess.Popen[bytes], str]) -> Callable[[], subprocess.Popen[bytes]]:
    return lambda: broker[0]


@pytest.fixture
def worker_env(kafka_url: str, redis_url: str) -> dict[str, str]:
    return {**os.environ, **FAST_WORKER, "STREAMPROC_KAFKA_URL": kafka_url, "STREAMPROC_REDIS_URL": redis_url}


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a worker and wait until it has joined the group; all are stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(env: dict[str, str], name: str = "worker") -> subprocess.Popen[bytes]:
        log = tmp_path / f"{name}.log"
        start = log.stat().st_size if log.exists() else 0
        proc = start_worker(env, log)
        procs.append(proc)
        wait_for(lambda: proc.poll() is not None or b"Worker]: Ready" in log.read_bytes()[start:],
                 60, f"{name} to be ready")
        assert proc.poll() is None, log.read_text()[-3000:]
        return proc

    yield spawn
    for p in procs:
        stop_process(p)


LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder: ``tests/unit`` (no broker, no Redis), ``tests/integration``
    (a real Redis and/or broker, in process) and ``tests/e2e`` (worker processes); doctests of the
    package are unit tests. ``pytest -m unit`` runs the fast ones."""
    for item in items:
        parts = item.path.parts
        layer = next((name for name in LAYERS if "tests" in parts and name in parts), "unit")
        item.add_marker(getattr(pytest.mark, layer))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
