"""The agents: thin loops that hand batches of input records to the processing process
(``runtime.offload``) and training examples to the learner.

One agent consumes all input topics. They are co-partitioned (same partition count, keyed
by customer), so one customer's events of every kind reach the same worker and are applied
by one processor in order: no two coroutines ever read-modify-write the same customer.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import faust
import orjson
from aiokafka.errors import IllegalStateError

from streamproc.contracts import Contracts
from streamproc.eventtime import tp_key
from streamproc.runtime import assemble, dashboard, erasure, web
from streamproc.runtime.learner import Learner
from streamproc.runtime.metrics import Lag, Metrics
from streamproc.runtime.offload import Highwater, OffloadedProcessor
from streamproc.runtime.webhooks import Deliverer
from streamproc.settings import DEV_SECRET, Settings

log = logging.getLogger(__name__)


def build_learner(app: faust.App, settings: Settings, contracts: Contracts) -> Learner:
    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202 - aiokafka future
        return await app.producer.send(topic, key, value, None, None, None)

    return assemble.learner(settings, contracts, send)


def _highwater(app: faust.App, inputs: set[str]) -> Highwater:
    """The consumer's high watermark (of its last fetch) of each input topic-partition assigned here."""
    marks: Highwater = {}
    for tp in app.consumer.assignment():
        if tp.topic in inputs:
            try:
                marks[tp_key(tp.topic, tp.partition)] = app.consumer.highwater(tp)
            except (IllegalStateError, KeyError):
                continue  # revoked meanwhile: nothing of it can reach this worker
    return marks


Applied = dict[tuple[str, int], tuple[int, float]]
"""``(topic, partition) -> (offset, record timestamp)`` of the newest record applied by this worker."""


async def _apply(stream: faust.StreamT, processor: OffloadedProcessor, events: list[faust.EventT],
                 highwater: Highwater, metrics: Metrics, applied: Applied) -> None:
    """Apply a batch, then acknowledge its records to Kafka (never before its effects are durable)."""
    records = [(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]
    started = time.perf_counter()
    await processor.handle(records, (), highwater)
    metrics.applied(time.perf_counter() - started, [e.message.timestamp for e in events])
    for e in events:
        m = e.message
        applied[(m.topic, m.partition)] = (m.offset, m.timestamp or 0.0)
        await stream.ack(e)


def _lag(app: faust.App, inputs: set[str], applied: Applied) -> list[Lag]:
    """Records and seconds behind, per input topic-partition assigned here (``metrics.Lag``)."""
    out, now = [], time.time()
    for tp in app.consumer.assignment():
        if tp.topic not in inputs:
            continue
        try:
            high = app.consumer.highwater(tp)
        except (IllegalStateError, KeyError):
            continue
        offset, ts = applied.get((tp.topic, tp.partition), (-1, 0.0))
        behind = max((high or 0) - offset - 1, 0)
        out.append((tp.topic, tp.partition, behind, max(now - ts, 0.0) if behind and ts else 0.0))
    return out


def _assigned(app: faust.App, inputs: set[str]) -> list[int]:
    return sorted({tp.partition for tp in app.consumer.assignment() if tp.topic in inputs})


def serve_http(app: faust.App, settings: Settings, contracts: Contracts, processor: OffloadedProcessor,
               inputs: set[str], applied: Applied) -> Metrics:
    """The customer API under ``/v1``, the dashboard under ``/dashboard/``, ``/livez``, ``/readyz`` and
    ``/metrics`` on the worker's own web server (``runtime.web``, ``runtime.dashboard``,
    ``runtime.metrics``); returns the metrics the agent feeds."""
    client = assemble.redis_client(settings)
    health = web.Health(settings, client, lambda: len(_assigned(app, inputs)), lambda: bool(app.rebalancing),
                        processor.alive)
    metrics = Metrics(client, assemble.redis_keys(settings), settings.app_id, lambda: _lag(app, inputs, applied))
    server = app.web.web_app
    erase_topic = contracts.one("erasure")
    reader = web.Reader(settings, client, (erase_topic.name, erase_topic.partitions))
    server.add_routes(dashboard.routes())  # before the sub-app, whose prefix would take /dashboard
    server.add_subapp("/v1", web.api(settings, reader))

    async def clusters() -> object:
        return (await reader.population()).clusters

    board = dashboard.Aggregator(client, assemble.redis_keys(settings), inputs, lambda: _lag(app, inputs, applied), clusters)
    server.add_subapp("/dashboard", dashboard.app(board, web.auth_middleware(settings)))
    server.add_routes(web.health_routes(health) + web.metrics_routes(metrics))
    return metrics


def attach(app: faust.App, settings: Settings, contracts: Contracts) -> None:
    """Register the ingest agent, its timer and the learner agent on ``app``."""
    inputs = app.topic(*[t.name for t in contracts.inputs], value_type=bytes, value_serializer="raw",
                       key_type=bytes, key_serializer="raw", partitions=contracts.inputs[0].partitions)

    names = {t.name for t in contracts.inputs}
    processor = OffloadedProcessor(settings)
    applied: Applied = {}
    metrics = serve_http(app, settings, contracts, processor, names, applied)

    @app.timer(settings.tick_s, on_leader=False)
    async def release() -> None:
        """Release held events and fire timers of this worker's partitions when no records arrive."""
        if app.rebalancing:
            return
        await processor.tick(_assigned(app, names), _highwater(app, names))

    @app.agent(inputs, name="ingest", concurrency=1)
    async def ingest(stream: faust.StreamT) -> None:
        gc.freeze()  # start-up objects (schemas, Faust's graph) are never garbage: skip them in collections
        if settings.pii_secret.get_secret_value() == DEV_SECRET:
            log.warning("STREAMPROC_PII_SECRET is the development default: set a secret of your own in production")
        log.info("ingest agent consuming %s", ", ".join(t.name for t in contracts.inputs))
        processor.start()
        applying: asyncio.Future[None] | None = None
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_within_s):
            if applying is not None:
                await applying  # one batch in the processing process while the next one is collected
            applying = asyncio.ensure_future(_apply(stream, processor, events, _highwater(app, names), metrics, applied))

    training = app.topic(contracts.one("training").name, value_type=bytes, value_serializer="raw",
                         key_type=bytes, key_serializer="raw", partitions=1)
    learner = build_learner(app, settings, contracts)

    @app.agent(training, name="learner", concurrency=1)
    async def learn(stream: faust.StreamT) -> None:
        """The one learner: the training topic has one partition, so one worker of the group runs it."""
        log.info("learner agent consuming %s", contracts.one("training").name)
        async for events in stream.take_events(settings.batch_size, within=0.2):
            await learner.handle([(e.message.offset, e.value) for e in events])

    @app.timer(settings.model_publish_s, on_leader=False)
    async def publish_models() -> None:
        """Publish the learner's latest examples when none have followed them for a while."""
        await learner.flush()


    erasures = app.topic(contracts.one("erasure").name, value_type=bytes, value_serializer="raw", key_type=bytes,
                         key_serializer="raw", partitions=contracts.one("erasure").partitions)
    eraser_client = assemble.redis_client(settings)
    alerts_topic = contracts.one("alerts").name

    @app.agent(erasures, name="erase", concurrency=1)
    async def erase_customers(stream: faust.StreamT) -> None:
        """Erase commands, each on the customer's partition (``runtime.erasure``); acknowledged once done."""
        async for event in stream.events():
            try:
                cmd = orjson.loads(event.value)
                key = cmd["customer_key"]
                if cmd.get("type") != "erase" or not isinstance(key, str) or not web.KEY.match(key):
                    raise ValueError("not an erase command")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.error("erasures record at %s:%d is not an erase command (%s); skipped", event.message.topic,
                          event.message.offset, exc)
                continue
            record = await erasure.erase(eraser_client, assemble.redis_keys(settings), cmd, [event.message.partition],
                                         settings.erased_events == "suppress")
            await app.producer.send_and_wait(alerts_topic, key.encode(), orjson.dumps(record.to_dict()), None, None, None)

    if settings.webhooks and settings.webhooks_in_worker:
        deliverer = Deliverer(settings, assemble.redis_client(settings), contracts.one("alerts").name)

        @app.task
        async def deliver_webhooks() -> None:
            """CRM webhooks, in a consumer group of their own (``runtime.webhooks``)."""
            await deliverer.run()
