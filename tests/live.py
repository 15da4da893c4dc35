"""Helpers for tests that watch a live system: wait for a condition, read a topic, count
what the workers handled, and report figures in the run's summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from streamproc.ops.dlq import read_all
from streamproc.ops.stats import StatsReader


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
