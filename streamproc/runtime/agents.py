"""The agent: a thin loop that hands batches of input records to the ``Processor``.

One agent consumes all input topics. They are co-partitioned (same partition count, keyed
by customer), so one customer's events of every kind reach the same worker and are applied
by one loop in order: no two coroutines ever read-modify-write the same customer.
"""

from __future__ import annotations

import gc
from datetime import timedelta
import logging
import faust
from aiokafka.errors import IllegalStateError
from faust.types import TP
import redis.asyncio as aioredis

from streamproc.contracts import Contracts
from streamproc.decisions.rules import Rules
from streamproc.ingest.decode import Decoder, TimeBounds
from streamproc.runtime.keys import Keys
from streamproc.runtime.learner import Learner, OnlineModels
from streamproc.runtime.refit import Refitter
from streamproc.runtime.processor import Ordering, Processor, RawRecord
from streamproc.runtime.store import Store
from streamproc.settings import DEV_SECRET, Settings

log = logging.getLogger(__name__)


def redis_client(settings: Settings) -> aioredis.Redis:
    """An asyncio Redis client; timeouts are applied per pipeline by the store."""
    return aioredis.Redis.from_url(settings.redis_url, socket_timeout=None, socket_connect_timeout=5)


def build_processor(app: faust.App, settings: Settings, contracts: Contracts) -> Processor:
    client, keys_ = redis_client(settings), Keys(settings.key_prefix)
    store = Store(client, keys_, Rules.from_settings(settings), settings.top_spend_fraction,
                  settings.min_population, settings.redis_timeout_s, settings.segment_margin)
    refit = Refitter(client, keys_, timedelta(days=settings.ltv_refit_days), settings.clusters)

    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202 - aiokafka future
        return await app.producer.send(topic, key, value, None, None, None)

    keys = settings.pseudonymiser()
    bounds = TimeBounds(settings.min_event_time, settings.max_clock_skew_s)
    decoder = Decoder(contracts.validators, settings.fx_rates, settings.base_currency, keys, bounds)
    order = Ordering(delay_s=settings.watermark_delay_s, idle_after_s=settings.idle_after_s,
                     pending=lambda tp, offset: _pending(app, tp, offset))
    online = OnlineModels(client, keys_)
    return Processor(store, send, contracts, decoder, keys, settings.allowed_lateness_s, order, refit, online)


def build_learner(app: faust.App, settings: Settings, contracts: Contracts) -> Learner:
    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202 - aiokafka future
        return await app.producer.send(topic, key, value, None, None, None)

    return Learner(redis_client(settings), Keys(settings.key_prefix), send, contracts.one("model-health").name,
                   settings.model_publish_examples, settings.model_publish_s, settings.redis_timeout_s,
                   settings.churn_label_days)


def _pending(app: faust.App, tp: str, applied: int) -> bool:
    """Whether the consumer knows of records on ``tp`` past ``applied`` (its last fetch's high watermark)."""
    topic, _, partition = tp.rpartition(":")
    try:
        highwater = app.consumer.highwater(TP(topic, int(partition)))
    except (IllegalStateError, KeyError):
        return False  # not assigned here: nothing of it can reach this worker
    return highwater is None or highwater - 1 > applied


def _assigned(app: faust.App, inputs: set[str]) -> list[int]:
    return sorted({tp.partition for tp in app.consumer.assignment() if tp.topic in inputs})


def attach(app: faust.App, settings: Settings, contracts: Contracts) -> None:
    """Register the ingest agent, its timer and the learner agent on ``app``."""
    inputs = app.topic(*[t.name for t in contracts.inputs], value_type=bytes, value_serializer="raw",
                       key_type=bytes, key_serializer="raw", partitions=contracts.inputs[0].partitions)

    names = {t.name for t in contracts.inputs}
    processor = build_processor(app, settings, contracts)

    @app.timer(settings.tick_s, on_leader=False)
    async def release() -> None:
        """Release held events and fire timers of this worker's partitions when no records arrive."""
        if app.rebalancing:
            return
        await processor.tick(_assigned(app, names))

    @app.agent(inputs, name="ingest", concurrency=1)
    async def ingest(stream: faust.StreamT) -> None:
        gc.freeze()  # start-up objects (schemas, Faust's graph) are never garbage: skip them in collections
        if settings.pii_secret.get_secret_value() == DEV_SECRET:
            log.warning("STREAMPROC_PII_SECRET is the development default: set a secret of your own in production")
        log.info("ingest agent consuming %s", ", ".join(t.name for t in contracts.inputs))
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            records = [RawRecord(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]
            await processor.handle(records)

    training = app.topic(contracts.one("training").name, value_type=bytes, value_serializer="raw",
                         key_type=bytes, key_serializer="raw", partitions=1)
    learner = build_learner(app, settings, contracts)

    @app.agent(training, name="learner", concurrency=1)
    async def learn(stream: faust.StreamT) -> None:
        """The one learner: the training topic has one partition, so one worker of the group runs it."""
        log.info("learner agent consuming %s", contracts.one("training").name)
        async for events in stream.take_events(settings.batch_size, within=0.2):
            await learner.handle([(e.message.offset, e.value) for e in events])
