"""What the item model costs in Redis and in the profile, measured on a generated year: every
neighbour set stays within its trim, and the sizes Redis reports go into the run's figures."""

from __future__ import annotations

import asyncio
import statistics

import redis
import redis.asyncio as aioredis

from streamproc.decisions.rules import Population
from streamproc.pipeline import apply_batch
from streamproc.runtime.items import RedisItems
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig
from streamproc.state import codec
from streamproc.state.items import merge
from streamproc.tools.earlywarning import decoded_events
from tests.live import report


def test_neighbour_sets_stay_trimmed_and_their_memory_is_measured(redis_url: str) -> None:
    s = Settings()
    rules = s.rules()
    assert rules.items is not None
    events = list(decoded_events(GeneratorConfig(customers=150, days=365, seed=7), s))

    async def learn() -> dict:
        client = aioredis.Redis.from_url(redis_url)
        items, profiles = RedisItems(client, RedisKeys(), rules.items), {}
        try:
            for i in range(0, len(events), 500):
                result = apply_batch(events[i:i + 500], profiles, Population(), rules)
                profiles.update(result.profiles)
                async with client.pipeline(transaction=True) as pipe:
                    items.write(pipe, merge(result.items))
                    await pipe.execute()
        finally:
            await client.aclose()
        return profiles

    profiles = asyncio.run(learn())
    r = redis.Redis.from_url(redis_url)
    sets = list(r.scan_iter("sp:items:co:*"))
    members = [r.zcard(k) for k in sets]
    used = [r.memory_usage(k) for k in sets]
    recent = [len(codec.dumps(p.items)) for p in profiles.values()]
    assert sets and max(members) <= rules.items.trim
    report(f"item model after {len(events):,} generated events ({len(profiles)} customers): {len(sets)} neighbour "
           f"sets, members median {statistics.median(members):.0f} (max {max(members)}), MEMORY USAGE median "
           f"{statistics.median(used):,.0f} B (max {max(used):,} B); popularity set {r.memory_usage('sp:items:pop'):,} B "
           f"for {r.zcard('sp:items:pop')} items; recent items in a profile: median {statistics.median(recent):.0f} B "
           f"of JSON (max {max(recent)} B)")
