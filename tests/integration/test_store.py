"""The store on a real Redis: profiles round-trip through their documents exactly, a store reuses
the profiles it wrote while Redis still holds their documents, and reads any other document."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from typing import Any

import redis.asyncio as aioredis

from streamproc.decisions.rules import Population
from streamproc.ingest import Click
from streamproc.pipeline import apply_batch
from streamproc.runtime import assemble
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.store import Changes, RedisStore
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig
from streamproc.state import codec
from streamproc.state.profile import Profile, apply_event, new_profile
from streamproc.tools.earlywarning import decoded_events
from tests.builders import RULES, SETTINGS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def twins(a: Any, b: Any, path: str = "profile") -> list[str]:
    """Where ``a`` and ``b`` differ in value or in type, recursively."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} != {type(b).__name__}"]
    if dataclasses.is_dataclass(a):
        return [d for f in dataclasses.fields(a) for d in twins(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")]
    if isinstance(a, tuple):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in twins(x, y, f"{path}[{i}]")]
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{path}: keys differ"]
        return [d for k in a for d in twins(a[k], b[k], f"{path}[{k!r}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_profiles_round_trip_through_their_documents_with_their_types() -> None:
    result = apply_batch(decoded_events(GeneratorConfig(customers=60, days=40, seed=5), Settings()), {},
                         Population(), RULES)
    assert result.profiles
    for p in result.profiles.values():
        assert twins(p, codec.loads(Profile, codec.dumps(p))) == []


def profile(events: int) -> Profile:
    p = new_profile(Click("e0", "C1", T0, "s", "/", "page_view"))
    for i in range(events):
        p = apply_event(p, Click(f"e{i}", "C1", T0, "s", "/", "page_view"), 64)
    return p


async def write(store: RedisStore, p: Profile) -> None:
    changes = Changes(profiles={p.customer_id: p}, partition_of={p.customer_id: 0}, outputs=[], offsets={},
                      high_marks={}, stats={}, started_at=0.0, partitions=[0])
    async with store.guard([0]) as pipe:
        await store.write(changes, pipe)


def test_a_profile_written_elsewhere_is_read_from_redis(redis_url: str) -> None:
    async def scenario() -> tuple[Profile | None, Profile | None]:
        client = aioredis.Redis.from_url(redis_url)
        store = assemble.redis_store(SETTINGS, client)
        mine = profile(1)
        await write(store, mine)
        unchanged = (await store.load(["C1"], [])).profiles["C1"]
        await client.set(RedisKeys().profile("C1"), codec.dumps(profile(2)))  # another worker's write
        changed = (await store.load(["C1"], [])).profiles["C1"]
        await client.aclose()
        return unchanged is mine, changed

    kept, changed = asyncio.run(scenario())
    assert kept and changed == profile(2)
