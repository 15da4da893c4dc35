"""The composition root: every part of the worker built from ``Settings``, in one place.

In: ``Settings`` (and the contracts, a send function, the consumer's view of what is pending).
Out: the Redis client, the store, the processor with its refitter and online models, and the
learner. No other module of the runtime reads a setting to build a part, and no part repeats
a setting's default: the constructors take keyword arguments without defaults, and this module
passes each one from ``Settings``. Tests build parts the same way, from ``Settings(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import redis.asyncio as aioredis

from streamproc.contracts import Contracts
from streamproc.runtime.learner import Learner, OnlineModels
from streamproc.runtime.population import PopulationView
from streamproc.runtime.processor import Ordering, Processor, Send
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.refit import Refitter
from streamproc.runtime.rulebook import RuleBook
from streamproc.runtime.store import MemoryStore, RedisStore
from streamproc.settings import Settings


def redis_client(settings: Settings) -> aioredis.Redis:
    """An asyncio Redis client; timeouts are applied per pipeline by the store."""
    return aioredis.Redis.from_url(settings.redis_url, socket_timeout=None, socket_connect_timeout=5)


def redis_keys(settings: Settings) -> RedisKeys:
    return RedisKeys(settings.key_prefix)


def redis_store(settings: Settings, client: aioredis.Redis, kind: type[RedisStore] = RedisStore) -> RedisStore:
    """The Redis store of customer state (of class ``kind``: a test may wrap its methods)."""
    return kind(client, redis_keys(settings), settings.rules(), top_fraction=settings.top_spend_fraction,
                      min_population=settings.min_population, timeout_s=settings.redis_timeout_s,
                      margin=settings.segment_margin)


def population_view(settings: Settings) -> PopulationView:
    """The population as a store reads it (for reads outside a worker: ``ops.stats``)."""
    return PopulationView(redis_keys(settings), settings.top_spend_fraction, settings.min_population,
                          settings.segment_margin)


def memory_store(settings: Settings) -> MemoryStore:
    """The in-memory twin of ``redis_store``, with the same thresholds."""
    return MemoryStore(settings.rules(), top_fraction=settings.top_spend_fraction,
                       min_population=settings.min_population, margin=settings.segment_margin)


def ordering(settings: Settings, pending: Callable[[str, int], bool] | None = None,
             clock: Callable[[], float] | None = None) -> Ordering:
    """How the processor orders events; ``pending(tp, applied_offset)`` and ``clock`` as ``Ordering``'s."""
    extra = {k: v for k, v in (("pending", pending), ("clock", clock)) if v is not None}
    return Ordering(delay_s=settings.watermark_delay_s, idle_after_s=settings.idle_after_s,
                    release_limit=settings.release_limit, **extra)


def refitter(settings: Settings, client: aioredis.Redis, contracts: Contracts) -> Refitter:
    """The population fits, each made once every partition of the input topics passed its time."""
    return Refitter(client, redis_keys(settings), every=timedelta(days=settings.ltv_refit_days),
                    clusters=settings.clusters, partitions=contracts.inputs[0].partitions,
                    horizon_days=settings.ltv_horizon_days, sessions=settings.rules().sessions)


def processor(settings: Settings, contracts: Contracts, send: Send, *, store: RedisStore | MemoryStore | None = None,
              pending: Callable[[str, int], bool] | None = None, clock: Callable[[], float] | None = None,
              population_fits: bool = True) -> Processor:
    """The processor of ``settings``, publishing with ``send``, on the Redis store (or ``store``).
    On the Redis store it refits the population and reads the learner's models; on another
    store, or without ``population_fits``, it does neither."""
    client = redis_client(settings) if store is None else None
    on_redis = client is not None
    return Processor(
        store if store is not None else redis_store(settings, client), send, contracts,
        settings.decoder(contracts), settings.pseudonymiser(), lateness_s=settings.allowed_lateness_s,
        order=ordering(settings, pending, clock),
        refit=refitter(settings, client, contracts) if on_redis and population_fits else None,
        online=OnlineModels(client, redis_keys(settings)) if on_redis and population_fits else None,
        rulebook=RuleBook(client, redis_keys(settings), settings.rules().triggers) if on_redis else None,
    )


def learner(settings: Settings, contracts: Contracts, send: Send) -> Learner:
    """The one learner, publishing model-health records with ``send``."""
    return Learner(redis_client(settings), redis_keys(settings), send, contracts.one("model-health").name,
                   publish_examples=settings.model_publish_examples, publish_s=settings.model_publish_s,
                   timeout_s=settings.redis_timeout_s, horizon_days=settings.churn_label_days)
