"""The processor in a process of its own: the Faust worker consumes, a child process applies.

In: batches of input records and ticks from the worker's agent and timer, each with the
consumer's high watermarks of the worker's input partitions. Out: what ``Processor.handle``
does with them (outputs published and acknowledged, state committed to Redis), done in a
child process with its own Redis client and Kafka producer. Decoding, the pipeline and the
Redis work then run beside Faust's per-message work instead of taking turns with it on one
interpreter lock: the agent collects the next batch while the child applies the previous one.

Calls run one at a time, in the order they are made, and a call returns only once its
effects are durable, so the agent acknowledges records to Kafka only then. The worker and
its child live and die together: the child ends with the worker (``die_with_parent``), and
a worker whose child died exits at once with status 1, as a worker that crashed, so what
follows is what follows any crash: the records it had not acknowledged are applied again
by the next worker of the group, and those already applied are skipped by their offsets.
(Restarting the child alone would apply them again with online models that the worker's
learner may have published meanwhile, and republish outputs with other scores.)
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from aiokafka import AIOKafkaProducer

from streamproc.contracts import load_contracts
from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.admin import bootstrap
from streamproc.runtime.children import die_with_parent
from streamproc.runtime.processor import Processor
from streamproc.settings import Settings

log = logging.getLogger(__name__)
LOG_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s"
STOP_WAIT_S = 5.0

ConsumedRecord = tuple[str, int, int, bytes | None]
"""``(topic, partition, offset, value)`` of one input record, as sent to the child: the wire form
of ``ordering.Consumed`` (the child builds ``Consumed(*record)``), a tuple because a pickled
tuple costs a twentieth of a pickled dataclass."""
Highwater = dict[str, int | None]
"""The consumer's high watermark of each assigned input topic-partition (``"topic:N"``)."""




def pending(highwater: Mapping[str, int | None], tp: str, applied: int) -> bool:
    """Whether ``highwater`` shows records on ``tp`` past the ``applied`` offset; a
    topic-partition not in it is not assigned to this worker, and nothing of it can arrive.

    >>> pending({"clicks:0": 10}, "clicks:0", 8), pending({"clicks:0": 10}, "clicks:0", 9)
    (True, False)
    >>> pending({"clicks:0": None}, "clicks:0", 9), pending({}, "clicks:1", 9)
    (True, False)
    """
    if tp not in highwater:
        return False
    mark = highwater[tp]
    return mark is None or mark - 1 > applied


class OffloadedProcessor:
    """``handle`` and ``tick`` of a ``Processor`` that runs in a child process, started by
    ``start`` (or the first call) and stopped when the worker exits (it starts processes of its
    own for population fits, so it is not a daemon). If the child dies, the worker exits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self._seq = 0
        self._lock = asyncio.Lock()
        atexit.register(self.close)

    async def handle(self, records: Iterable[ConsumedRecord], partitions: Iterable[int], highwater: Highwater) -> None:
        """Apply ``records`` (and release what waits on ``partitions``); returns once durable."""
        async with self._lock:
            self._seq += 1
            request = (self._seq, list(records), tuple(partitions), highwater)
            try:
                await self._call(request)
            except (EOFError, OSError) as exc:
                self._died(exc)

    async def tick(self, partitions: Iterable[int], highwater: Highwater) -> None:
        """Release held events and fire due timers of ``partitions`` when no records arrive."""
        parts = sorted(set(partitions))
        if parts:
            await self.handle([], parts, highwater)

    def alive(self) -> bool:
        """Whether the processing process runs (``/readyz``)."""
        return self._proc is not None and self._proc.is_alive()

    def _died(self, exc: BaseException) -> NoReturn:
        log.critical("the processing process ended (%s: %s); the worker exits, and its unacknowledged records "
                     "are applied again when it (or another worker of the group) consumes them", type(exc).__name__, exc)
        self.close()
        logging.shutdown()
        os._exit(1)

    def close(self) -> None:
        """Stop the child: it finishes the call in progress, if any, and ends when it finds the
        connection closed; after ``STOP_WAIT_S`` it is terminated."""
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(STOP_WAIT_S)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
        self._proc = self._conn = None

    async def _call(self, request: tuple[int, list[ConsumedRecord], tuple[int, ...], Highwater]) -> None:
        conn = self.start()
        conn.send(request)
        while True:
            while conn.poll():
                if conn.recv() == request[0]:  # EOFError when the child has died
                    return
            await _readable(conn)

    def start(self) -> Connection:
        """Start the child unless it runs; returns the worker's end of the connection to it."""
        if self._conn is None:
            ours, theirs = self._ctx.Pipe()
            self._proc = self._ctx.Process(target=serve, args=(theirs, self.settings), name="streamproc-processor")
            self._proc.start()
            theirs.close()
            self._conn = ours
        return self._conn


async def _readable(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(conn.fileno())


def serve(conn: Connection, settings: Settings) -> None:
    """The child: apply each request from ``conn`` and answer with its sequence number, until
    the worker closes its end (or ends, which ends this process too)."""
    die_with_parent()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    asyncio.run(_serve(conn, settings))


async def _serve(conn: Connection, settings: Settings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings.kafka_url), acks="all", **settings.kafka_security())
    await producer.start()

    async def send(topic: str, key: bytes, value: bytes):  # noqa: ANN202 - aiokafka future
        return await producer.send(topic, value, key=key)

    highwater: Highwater = {}
    processor = assemble.processor(settings, load_contracts(settings.topics_dir), send,
                                   pending=lambda tp, applied: pending(highwater, tp, applied))
    try:
        await _answer(conn, processor, highwater)
    finally:
        await producer.stop()


async def _answer(conn: Connection, processor: Processor, highwater: Highwater) -> None:
    try:
        while True:
            await _readable(conn)
            while conn.poll():
                seq, records, partitions, marks = conn.recv()
                highwater.clear()
                highwater.update(marks)
                await processor.handle([Consumed(*r) for r in records], partitions)
                conn.send(seq)
    except (EOFError, BrokenPipeError):
        log.info("the worker closed the connection; the processing process ends")
