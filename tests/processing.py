"""Helpers for tests that drive the processor in process: the ``send`` callback that keeps what
it was given, a wall clock the test moves, a processor on a given store, and an event that raises."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import orjson
import pytest

import streamproc.pipeline
from streamproc.contracts import Contracts
from streamproc.runtime import assemble
from streamproc.runtime.processor import Processor
from streamproc.runtime.store import MemoryStore, RedisStore
from tests.builders import SETTINGS


class Published:
    """The processor's ``send`` callback: records it was given, by topic."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes) -> Awaitable[None]:
        self.records.append((topic, orjson.loads(value)))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [v for t, v in self.records if t == topic]


class Clock:
    """A wall clock that moves only when the test sets ``now``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def processor(contracts: Contracts, store: MemoryStore | RedisStore, send: Any, idle_after_s: float = 0.0,
              clock: Clock | None = None) -> Processor:
    settings = SETTINGS.model_copy(update={"idle_after_s": idle_after_s})
    return assemble.processor(settings, contracts, send, store=store, clock=clock)


def failing_on(monkeypatch: pytest.MonkeyPatch, event_id: str) -> None:
    """Processing the event ``event_id`` (a key, as decoded) raises."""
    stepped = streamproc.pipeline.stepped

    def buggy(p, event, pop, rules):  # noqa: ANN001, ANN202
        if event.event_id == event_id:
            raise ValueError("bad state")
        return stepped(p, event, pop, rules)

    monkeypatch.setattr(streamproc.pipeline, "stepped", buggy)
