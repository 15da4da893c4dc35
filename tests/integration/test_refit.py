"""Population fits on a real Redis: scheduled in event time, versioned, loaded by every store.

Profiles come from running a generated history through the pure pipeline; the refitter finds
the first fit time from the earliest event, waits until the slowest partition passes it, reads
the profiles from Redis as of that time, fits lifetime value and teaches the cluster model,
writes version 1 and drops the rows left for it; a store's population view then loads it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import redis
import redis.asyncio as aioredis

from streamproc.decisions.rules import Population
from streamproc.features.population import FitGrid
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
LAST = 4
"""Fits after the first one: every week, up to day 35 or so of the 40."""


def test_fit_is_scheduled_in_event_time_versioned_and_loaded(redis_url: str) -> None:
    result = apply_batch(decoded_events(CONFIG, Settings()), {}, Population(), RULES)
    r = redis.Redis.from_url(redis_url)
    keys = RedisKeys()
    r.mset({keys.profile(cid): codec.dumps(p) for cid, p in result.profiles.items()})
    first = min(p.first_seen for p in result.profiles.values())
    r.zadd(keys.first_event, {"first": first.timestamp()})
    due = FitGrid(timedelta(days=7), None).at_or_after(first + timedelta(days=7)).timestamp()
    r.hset(keys.fit_rows(due - 7 * DAY), "stale", b"{}")  # left before the first fit: dropped by it

    async def scenario() -> tuple[int | None, ...]:
        client = aioredis.Redis.from_url(redis_url)
        refit = Refitter(client, keys, every=timedelta(days=7), clusters=3, partitions=4, horizon_days=90,
                         sessions=RULES.sessions)
        early = await refit.run(due - 1)         # the slowest partition is not there yet
        first_fit = await refit.run(due + 3 * DAY)  # due: version 1, fitted as of the first fit time
        again = await refit.run(due + 3 * DAY)    # the next one is a period later
        first_customers = int(r.hget(keys.models, "customers") or 0)
        later = [await refit.run(due + k * 7 * DAY) for k in range(1, LAST + 1)]
        view = PopulationView(keys, 0.2, 10, 0.02)
        await view.reload(client)
        await client.aclose()
        bounds = view.as_fitted()
        return (early, first_fit, again, first_customers, later, view.version,
                view.ltv is not None and view.clusters is not None,
                None not in (bounds.recency, bounds.frequency, bounds.monetary, bounds.clv))

    early, first_fit, again, first_customers, later, version, models, bounds = asyncio.run(scenario())
    assert (early, first_fit, again, later, version, models, bounds) == (
        None, 1, None, list(range(2, LAST + 2)), LAST + 1, True, True)
    assert first_customers == sum(p.first_seen.timestamp() <= due for p in result.profiles.values())
    doc = r.hgetall(keys.models)
    fit_time = due + LAST * 7 * DAY
    assert float(doc[b"fit_time"]) == fit_time and float(doc[b"next_fit"]) == fit_time + 7 * DAY
    assert doc[b"fitted_at"].decode() == datetime.fromtimestamp(fit_time, timezone.utc).isoformat()
    params = LtvParams.from_dict(orjson.loads(doc[b"ltv"]))
    assert params.version <= LAST + 1 and params.customers > 50 and params.r > 0 and params.q > 1
    assert not r.exists(f"{keys.models}:lock") and not list(r.scan_iter(match=keys.fit_rows("*")))
