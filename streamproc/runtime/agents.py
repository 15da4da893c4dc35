"""The agent: a thin loop that hands batches of input records to the ``Processor``.

One agent consumes all input topics. They are co-partitioned (same partition count, keyed
by customer), so one customer's events of every kind reach the same worker and are applied
by one loop in order: no two coroutines ever read-modify-write the same customer.
"""

from __future__ import annotations

import gc
import logging
import faust
import redis.asyncio as aioredis

from streamproc.contracts import Contracts
from streamproc.decisions.rules import Rules
from streamproc.ingest.decode import Decoder, TimeBounds
from streamproc.runtime.keys import Keys
from streamproc.runtime.processor import Processor, RawRecord
from streamproc.runtime.store import Store
from streamproc.settings import DEV_SECRET, Settings

log = logging.getLogger(__name__)


def redis_client(settings: Settings) -> aioredis.Redis:
    """An asyncio Redis client; timeouts are applied per pipeline by the store."""
    return aioredis.Redis.from_url(settings.redis_url, socket_timeout=None, socket_connect_timeout=5)


def build_processor(app: faust.App, settings: Settings, contracts: Contracts) -> Processor:
    store = Store(redis_client(settings), Keys(settings.key_prefix), Rules.from_settings(settings),
                  settings.top_spend_fraction, settings.min_population, settings.redis_timeout_s)

    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202 - aiokafka future
        return await app.producer.send(topic, key, value, None, None, None)

    keys = settings.pseudonymiser()
    bounds = TimeBounds(settings.min_event_time, settings.max_clock_skew_s)
    decoder = Decoder(contracts.validators, settings.fx_rates, settings.base_currency, keys, bounds)
    return Processor(store, send, contracts, decoder, keys, settings.allowed_lateness_s)


def attach(app: faust.App, settings: Settings, contracts: Contracts) -> None:
    """Register the ingest agent on ``app``."""
    inputs = app.topic(*[t.name for t in contracts.inputs], value_type=bytes, value_serializer="raw",
                       key_type=bytes, key_serializer="raw", partitions=contracts.inputs[0].partitions)

    @app.agent(inputs, name="ingest", concurrency=1)
    async def ingest(stream: faust.StreamT) -> None:
        processor = build_processor(app, settings, contracts)
        gc.freeze()  # start-up objects (schemas, Faust's graph) are never garbage: skip them in collections
        if settings.pii_secret.get_secret_value() == DEV_SECRET:
            log.warning("STREAMPROC_PII_SECRET is the development default: set a secret of your own in production")
        log.info("ingest agent consuming %s", ", ".join(t.name for t in contracts.inputs))
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            records = [RawRecord(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]
            await processor.handle(records)
