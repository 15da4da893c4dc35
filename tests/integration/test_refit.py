"""Population fits on a real Redis: scheduled in event time, versioned, loaded by every store.

Profiles come from running a generated history through the pure pipeline; the refitter reads
them from Redis, fits lifetime value and teaches the cluster model, and writes version 1; a
store's population view then loads it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import redis
import redis.asyncio as aioredis

from streamproc.decisions.rules import Population
from streamproc.models.ltv import LtvParams
from streamproc.pipeline import apply_batch
from streamproc.runtime.population import PopulationView
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.refit import Refitter
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig
from streamproc.state import codec
from streamproc.tools.earlywarning import decoded_events
from tests.builders import RULES

CONFIG = GeneratorConfig(customers=150, days=40, seed=3)
DAY = 86400.0


def test_fit_is_scheduled_in_event_time_versioned_and_loaded(redis_url: str) -> None:
    result = apply_batch(decoded_events(CONFIG, Settings()), {}, Population(), RULES)
    r = redis.Redis.from_url(redis_url)
    keys = RedisKeys()
    r.mset({keys.profile(cid): codec.dumps(p) for cid, p in result.profiles.items()})
    end = max(p.last_seen for p in result.profiles.values()).timestamp()

    async def scenario() -> tuple[int | None, ...]:
        client = aioredis.Redis.from_url(redis_url)
        refit = Refitter(client, keys, every=timedelta(days=7), clusters=3, partitions=4, horizon_days=90)
        first = await refit.run(end - 7 * DAY)    # schedules the first fit 7 days later, at the end
        early = await refit.run(end - 2 * DAY)    # the slowest partition is not there yet
        fitted = await refit.run(end + 3 * DAY)   # due: version 1, fitted as of the end
        view = PopulationView(keys, 0.2, 10, 0.02)
        await view.reload(client)
        await client.aclose()
        bounds = view.as_fitted()
        return (first, early, fitted, view.version, view.ltv is not None and view.clusters is not None,
                None not in (bounds.recency, bounds.frequency, bounds.monetary, bounds.clv))

    assert asyncio.run(scenario()) == (None, None, 1, 1, True, True)
    doc = r.hgetall(keys.models)
    assert float(doc[b"next_fit"]) == end + 7 * DAY and doc[b"fitted_at"].decode() == datetime.fromtimestamp(end, timezone.utc).isoformat()
    params = LtvParams.from_dict(orjson.loads(doc[b"ltv"]))
    assert params.version == 1 and params.customers > 50 and params.r > 0 and params.q > 1
    assert int(doc[b"customers"]) == len(result.profiles)
    assert not r.exists(f"{keys.models}:lock")
