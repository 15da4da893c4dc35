"""Population fits: lifetime-value parameters, the behaviour-cluster model and the population's bounds, at fixed event times.

In: every profile in Redis, the rows customers left for the fit time (``RedisKeys.fit_rows``,
see ``features.population``), and how far each partition of the input topics has been
applied (``RedisKeys.progress``, written here from each worker's batches). Out: a new version
in the models hash (``RedisKeys.models``): BG/NBD and Gamma-Gamma parameters fitted by maximum
likelihood (``models.ltv``), the cluster model after one more online pass over the
population's inputs (``models.clusters``), every customer's recency, frequency, spend and CLV
as of the fit (the population bounds of RFM scores and value tiers, see
``runtime.population``), and the fit's time.

A fit uses the population as of one event time, so two replays of one history fit the same
parameters however fast each partition was drained:

* fit times are multiples of ``STREAMPROC_LTV_REFIT_DAYS`` since the epoch
  (``features.population.FitGrid``): the first at or after one period past the earliest event
  applied (``RedisKeys.first_event``), then every period; a fit is made at every one of them,
  in order, so the cluster model learns the same sequence;
* a fit at time T runs once the *slowest* partition, over all partitions of the input topics
  and all workers, has applied every event up to T (a partition with nothing left to read
  whose every event is applied does not hold it back);
* nothing waits for the fit: a partition that runs ahead keeps applying events, and each
  customer it moves past T leaves, in the same transaction, its row as of T. The fit reads
  that row for a customer who changed after T, and the row of the stored profile for one who
  did not: every customer as of T, whatever the partitions did since.

A fit with too few buyers for the lifetime-value models keeps the previous parameters (none
before the first) and still stores the rest, so the fit times stay fixed. The residual: an
event applied late (after its partition passed T, within the allowed lateness) is not in a
row already left for T.

One worker fits at a time (a lock key with a timeout); the fit runs beside the stream in a
background task, and the CPU-heavy part (decoding the profiles, the maximum-likelihood fits
and the cluster model's pass) runs in a child process of its own, so that it takes neither
the event loop's time nor its interpreter lock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streamproc.features.population import FitGrid, FitRow, row
from streamproc.models import ltv
from streamproc.models.clusters import ClusterModel, ClusterParams
from streamproc.runtime.children import die_with_parent
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.state import codec
from streamproc.state.profile import Profile
from streamproc.state.sessions import SessionRules

log = logging.getLogger(__name__)
LOCK_S = 300


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class Refitter:
    """Records how far this worker's partitions are applied, and fits once the slowest partition passed the fit time."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, *, every: timedelta, clusters: int,
                 partitions: int, horizon_days: float, sessions: SessionRules) -> None:
        self.r, self.keys, self.every, self.clusters = client, keys, every, clusters
        self.partitions, self.horizon_days, self.sessions = partitions, horizon_days, sessions
        self.task: asyncio.Task[None] | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._progress: dict[int, float] = {}
        self._written: dict[int, float] = {}

    def poke(self, progress: dict[int, float]) -> None:
        """Called after each batch with how far each of the worker's partitions is applied."""
        self._progress.update(progress)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._guarded())

    async def _guarded(self) -> None:
        try:
            await self.run(await self._record())
        except RedisError as exc:  # tried again after the next batch
            log.warning("population fit not checked (%s: %s)", type(exc).__name__, exc)
        except Exception:  # a failed fit keeps the previous version; the stream goes on
            log.exception("population fit failed; the previous models stay in use")

    async def _record(self) -> float:
        """Store this worker's progress; return the slowest partition's. Idle partitions count as
        done, but never past the newest event seen: an idle stream does not fit on into the future."""
        changed = {p: t for p, t in self._progress.items() if self._written.get(p) != t}
        pipe = self.r.pipeline(transaction=False)
        if changed:
            pipe.hset(self.keys.progress, mapping={str(p): repr(t) for p, t in changed.items()})
        pipe.hgetall(self.keys.progress)
        pipe.hvals(self.keys.watermarks)
        *_, stored, seen = await pipe.execute()
        self._written.update(changed)
        progress = {int(p): float(t) for p, t in stored.items()}
        newest = max((float(t) for t in seen), default=float("-inf"))
        return min(newest, *(progress.get(p, float("-inf")) for p in range(self.partitions)))

    def grid(self, fitted: float | None) -> FitGrid:
        return FitGrid(self.every, None if fitted is None else _utc(fitted))

    async def due(self) -> float | None:
        """The next fit time: a period after the last, or the first (see the module docstring)."""
        fitted, first = await self.r.hget(self.keys.models, "fit_time"), await self.r.zscore(self.keys.first_event, "first")
        if fitted is not None:
            return float(fitted) + self.every.total_seconds()
        if first is None:
            return None
        return self.grid(None).at_or_after(_utc(first) + self.every).timestamp()

    async def run(self, slowest: float) -> int | None:
        """Fit if the next fit time is at or before ``slowest``; returns the new version, or None."""
        lock = f"{self.keys.models}:lock"
        if not await self.r.set(lock, b"1", nx=True, ex=LOCK_S):
            return None
        try:
            at = await self.due()
            if at is None or slowest < at:
                return None
            return await self._fit_at(at)
        finally:
            await self.r.delete(lock)

    async def _fit_at(self, fit_time: float) -> int:
        """Fit the population as of ``fit_time``, store it, and drop the rows left for it and before."""
        started = time.perf_counter()
        documents = await self._documents()
        rows = await self.r.hgetall(self.keys.fit_rows(fit_time))
        doc = await self.r.hgetall(self.keys.models)
        version = int(doc.get(b"version", 0)) + 1
        at = _utc(fit_time)
        try:
            fitted = await asyncio.get_running_loop().run_in_executor(
                self._fitter(), _fit, documents, rows, doc.get(b"clusters"), self.clusters, at, version,
                self.horizon_days, self.sessions)
        except BrokenProcessPool:
            self._pool = None  # the fit process died: the next fit starts another
            raise
        params = fitted.params
        await self.r.hset(self.keys.models, mapping={
            "version": version, "clusters": fitted.clusters, "fitted_at": at.isoformat(), "fit_time": fit_time,
            "next_fit": fit_time + self.every.total_seconds(), "customers": fitted.customers,
            **({"ltv": orjson.dumps(params.to_dict())} if params is not None else {}),
            **{f"pop:{dim}": values for dim, values in fitted.population.items()},
        })
        await self._drop_rows(fit_time)
        took = time.perf_counter() - started
        if params is None:
            log.info("population models version %d fitted at event time %s on %d customers (%d rows left by "
                     "customers changed since) in %.2fs; lifetime value not refitted: %s", version, at.isoformat(),
                     fitted.customers, len(rows), took, fitted.error)
        else:
            log.info("population models version %d fitted at event time %s on %d customers (%d rows left by "
                     "customers changed since) in %.2fs: BG/NBD r=%.3f alpha=%.3f a=%.3f b=%.3f, Gamma-Gamma "
                     "p=%.3f q=%.3f v=%.3f", version, at.isoformat(), fitted.customers, len(rows), took,
                     params.r, params.alpha, params.a, params.b, params.p, params.q, params.v)
        return version

    async def _drop_rows(self, fit_time: float) -> None:
        """Delete the rows of ``fit_time`` and of any earlier fit time (a batch may have left some
        for a fit already made, or before the first)."""
        old = [k async for k in self.r.scan_iter(match=self.keys.fit_rows("*"), count=1000)
               if float(k.rsplit(b":", 1)[1]) <= fit_time]
        if old:
            await self.r.delete(*old)

    def _fitter(self) -> ProcessPoolExecutor:
        """The fit process, started on the first fit (a fresh interpreter that ends with the worker)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=die_with_parent)
        return self._pool

    async def _documents(self) -> list[bytes]:
        """Every stored profile document (decoded in the fit process)."""
        out: list[bytes] = []
        batch: list[bytes] = []
        async for key in self.r.scan_iter(match=self.keys.profile("*"), count=1000):
            batch.append(key)
            if len(batch) == 1000:
                out += [d for d in await self.r.mget(batch) if d]
                batch = []
        if batch:
            out += [d for d in await self.r.mget(batch) if d]
        return out


@dataclass(frozen=True)
class Fitted:
    """What a fit stores: the parameters (None when too few buyers, ``error`` says why), the
    cluster model as stored, the number of customers, and each population dimension's values
    as of the fit, sorted (float64 bytes)."""

    params: ltv.LtvParams | None
    clusters: bytes
    customers: int
    population: dict[str, bytes]
    error: str = ""


def fit_rows(documents: list[bytes], rows: dict[bytes, bytes], at: datetime, rules: SessionRules) -> list[FitRow]:
    """Every customer as of ``at``, by customer id: the row left for ``at`` if the customer changed
    since, else the stored profile's; customers first seen after ``at`` are left out."""
    out = []
    for p in sorted((codec.loads(Profile, d) for d in documents), key=lambda p: p.customer_id):
        left = rows.get(p.customer_id.encode())
        r = codec.loads(FitRow, left) if left is not None else row(p, at, rules)
        if r is not None:
            out.append(r)
    return out


def _population(rows: list[FitRow], params: ltv.LtvParams | None, horizon_days: float) -> dict[str, bytes]:
    """Recency (last purchase time), frequency (orders), spend and CLV over ``horizon_days`` of
    every customer who bought, as of the fit, each sorted: the values the store ranks live."""
    buyers = [r for r in rows if r.last_purchase is not None and r.orders > 0]
    clv = [round(ltv.clv(params, r.summary, horizon_days), 2) for r in buyers
           if params is not None and r.summary is not None]
    values = {"recency": [r.last_purchase.timestamp() for r in buyers if r.last_purchase is not None],
              "frequency": [float(r.orders) for r in buyers], "monetary": [r.spend for r in rows if r.spend > 0],
              "clv": [c for c in clv if math.isfinite(c)]}
    return {dim: np.sort(np.asarray(v, dtype=np.float64)).tobytes() for dim, v in values.items()}


def _fit(documents: list[bytes], rows: dict[bytes, bytes], clusters: bytes | None, n_clusters: int, at: datetime,
         version: int, horizon_days: float, sessions: SessionRules) -> Fitted:
    """In the fit process: every customer as of ``at`` (``fit_rows``); lifetime value fitted on the
    buyers' summaries; the cluster model (stored as ``clusters``, or a new one of ``n_clusters``)
    taught every customer's input, in a shuffled order that depends only on the version (so the
    centres do not drift towards whichever customers sort last); the population's values.
    Customers are taken by id, not in the order Redis scanned them: on a flat likelihood the
    optimum found depends on the order of the sums, and replays must agree."""
    population = fit_rows(documents, rows, at, sessions)
    model = ClusterModel.loads(clusters) if clusters is not None else ClusterModel(
        ClusterParams(n_clusters=n_clusters, min_learned=20 * n_clusters))
    params, error = None, ""
    try:
        params = ltv.fit([r.summary for r in population if r.summary is not None], version, at)
    except ltv.FitError as exc:
        error = str(exc)
    ordered = list(population)
    random.Random(version).shuffle(ordered)
    for r in ordered:
        model.learn(r.cluster)
    return Fitted(params, model.dumps(), len(population), _population(population, params, horizon_days), error)
