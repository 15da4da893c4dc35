"""Helpers for tests that watch a live system: wait for a condition, read a topic, count
what the workers handled, and report figures in the run's summary."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from streamproc.ops.dlq import read_all
from streamproc.ops.stats import StatsReader
from streamproc.tools.stack import free_port, start_worker, stop_process


def wait_for(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


def consume(kafka_url: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` (read until no new record arrives for a moment)."""
    return asyncio.run(read_all(kafka_url, topic))


def processed(redis_url: str) -> int:
    """Records the worker has handled; -1 while Redis is restarting or loading its data."""
    try:
        return StatsReader(redis_url).snapshot(0).processed
    except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
        return -1


FIGURES: list[str] = []


def report(line: str) -> None:
    """A figure to print in the run's summary (fault-injection results, for the README)."""
    FIGURES.append(line)


def api_tokens(*tokens: tuple[str, str, tuple[str, ...]]) -> str:
    """``STREAMPROC_API_TOKENS`` for ``(name, token, scopes)`` entries."""
    return orjson.dumps([{"name": name, "sha256": hashlib.sha256(token.encode()).hexdigest(), "scopes": list(scopes)}
                         for name, token, scopes in tokens]).decode()


@contextmanager
def serving_worker(kafka_url: str, redis_url: str, tmp_path: Path, tokens: str) -> Iterator[tuple[int, Path]]:
    """A worker process with these API tokens, on a free web port, ready: ``(port, its log)``; stopped after."""
    from tests.conftest import FAST_WORKER

    port = free_port()
    env = {**os.environ, **FAST_WORKER, "STREAMPROC_KAFKA_URL": kafka_url, "STREAMPROC_REDIS_URL": redis_url,
           "STREAMPROC_API_TOKENS": tokens, "STREAMPROC_DATA_DIR": str(tmp_path / "faust")}
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, port)
    try:
        wait_for(lambda: b"Worker]: Ready" in log.read_bytes(), 60, "the worker")
        yield port, log
    finally:
        stop_process(worker)
