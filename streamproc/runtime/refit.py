"""Population fits: lifetime-value parameters and the behaviour-cluster model, every few days of event time.

In: every profile in Redis, and how far each partition of the input topics has been applied
(``RedisKeys.progress``, written here from each worker's batches). Out: a new version in the
models hash (``RedisKeys.models``): BG/NBD and Gamma-Gamma parameters fitted by maximum
likelihood (``models.btyd``), the cluster model after one more online pass over the
population's feature vectors (``models.clusters``), every customer's recency, frequency,
spend and CLV as of the fit (the population bounds of RFM scores and value tiers, see
``runtime.population``), and the event time of the next fit.

A fit uses the population as of one time that every partition has passed, so two replays of
one history fit the same parameters however fast each partition was drained:

* fit times are scheduled in event time: the first ``STREAMPROC_LTV_REFIT_DAYS`` after the
  earliest event of the history (the oldest event held once every partition has carried a
  record; nothing is applied before), each next one that long after the previous (a day
  after, when there was too little to fit);
* a fit at time T runs only once the *slowest* partition, over all partitions of the input
  topics and all workers, has applied every event up to T;
* no partition applies an event or fires a timer after T before the fit at T is stored: the
  processor caps its watermarks at ``Loaded.next_fit``, read with the population. So when
  the fit reads the profiles, each one is exactly as of T (a profile's purchase days cannot
  be summarised as of an earlier time than its last purchase, so the state is held at T
  rather than rolled back), and every event after T is decided with the models fitted at T.

The cost is that partitions advance together, one fit period apart at most: in a replay a
fast partition waits for the slowest at each fit time; live, partitions are seconds apart
and a fit takes seconds. A partition with nothing left to read whose every event is applied
(``Ordering.idle_after_s``) does not hold fits back: one that ran out first in a replay, or
that never carried a record, or fell silent. The residual: a partition whose producer pauses
for longer than that, then sends events older than the fit time, has them applied after the
fit, so that fit did not see them (a replay that publishes everything up front never
pauses). A failed fit is postponed by a day of event time, so it cannot stop the stream.

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

from streamproc.eventtime import partition_of
from streamproc.features.vector import cluster_input, vector
from streamproc.models import ltv
from streamproc.models.clusters import ClusterModel, ClusterParams
from streamproc.runtime.children import die_with_parent
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.state import codec, purchases
from streamproc.state.profile import Profile
from streamproc.state.purchases import RfmSummary

log = logging.getLogger(__name__)
LOCK_S = 300
RETRY_AFTER = timedelta(days=1)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class Refitter:
    """Records how far this worker's partitions are applied, and fits once the slowest partition passed the fit time."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, *, every: timedelta, clusters: int,
                 partitions: int, horizon_days: float) -> None:
        self.r, self.keys, self.every, self.clusters = client, keys, every, clusters
        self.partitions, self.horizon_days = partitions, horizon_days
        self.next_fit: float | None = None
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
            slowest = await self._record()
            if slowest is not None:
                await self.run(slowest)
        except RedisError as exc:  # tried again after the next batch
            log.warning("population fit not checked (%s: %s)", type(exc).__name__, exc)
        except Exception:  # a failed fit keeps the previous version; the stream goes on
            log.exception("population fit failed; the previous models stay in use")
            await self._postpone()

    async def _record(self) -> float | None:
        """Store this worker's progress; the slowest partition's, once a fit is scheduled (None before).
        Idle partitions count as done, but never past the newest event seen: an idle stream does
        not fit on into the future."""
        changed = {p: t for p, t in self._progress.items() if self._written.get(p) != t}
        pipe = self.r.pipeline(transaction=False)
        if changed:
            pipe.hset(self.keys.progress, mapping={str(p): repr(t) for p, t in changed.items()})
        pipe.hgetall(self.keys.progress)
        pipe.hget(self.keys.models, "next_fit")
        pipe.hgetall(self.keys.watermarks)
        *_, stored, next_fit, seen = await pipe.execute()
        self._written.update(changed)
        progress = {int(p): float(t) for p, t in stored.items()}
        if next_fit is None:
            await self._schedule(progress, {partition_of(k.decode()) for k in seen})
            return None
        newest = max((float(t) for t in seen.values()), default=float("-inf"))
        return min(newest, *(progress.get(p, float("-inf")) for p in range(self.partitions)))

    async def _schedule(self, progress: dict[int, float], seen: set[int]) -> None:
        """Schedule the first fit once every partition has carried a record (or is empty and idle):
        ``every`` after the oldest event held, which nothing has been applied before."""
        if any(p not in seen and progress.get(p) != float("inf") for p in range(self.partitions)):
            return
        pipe = self.r.pipeline(transaction=False)
        for p in range(self.partitions):
            pipe.zrange(self.keys.buffer(p), 0, 0, withscores=True)
        oldest = [got[0][1] for got in await pipe.execute() if got]
        if oldest:
            await self.run(min(oldest))

    async def _postpone(self) -> None:
        """After a failed fit: the next one a day later, so the stream held at the fit time goes on."""
        try:
            if (at := await self.r.hget(self.keys.models, "next_fit")) is not None:
                await self.r.hset(self.keys.models, "next_fit", float(at) + RETRY_AFTER.total_seconds())
        except Exception:
            log.exception("the failed fit could not be postponed; retrying it")

    async def run(self, slowest: float) -> int | None:
        """Fit if the one scheduled is due at ``slowest`` (schedule the first ``every`` after it
        when none is); returns the new version, or None if nothing was fitted."""
        lock = f"{self.keys.models}:lock"
        if not await self.r.set(lock, b"1", nx=True, ex=LOCK_S):
            return None
        try:
            return await self._run(slowest)
        finally:
            await self.r.delete(lock)

    async def _run(self, slowest: float) -> int | None:
        doc = await self.r.hgetall(self.keys.models)
        if b"next_fit" not in doc:
            self.next_fit = slowest + self.every.total_seconds()
            await self.r.hsetnx(self.keys.models, "next_fit", self.next_fit)
            log.info("first population fit scheduled at event time %s", _utc(self.next_fit).isoformat())
            return None
        self.next_fit = float(doc[b"next_fit"])
        if slowest < self.next_fit:
            return None
        return await self._fit_at(self.next_fit, doc)

    async def _fit_at(self, fit_time: float, doc: dict[bytes, bytes]) -> int | None:
        """Fit the population as of ``fit_time`` and store it with the next fit time."""
        started = time.perf_counter()
        documents = await self._documents()
        version = int(doc.get(b"version", 0)) + 1
        at = _utc(fit_time)
        try:
            fitted = await asyncio.get_running_loop().run_in_executor(
                self._fitter(), _fit, documents, doc.get(b"clusters"), self.clusters, at, version, self.horizon_days)
        except BrokenProcessPool:
            self._pool = None  # the fit process died: the next fit starts another
            raise
        except ltv.FitError as exc:
            self.next_fit = fit_time + RETRY_AFTER.total_seconds()
            await self.r.hset(self.keys.models, "next_fit", self.next_fit)
            log.info("population fit at %s postponed by a day: %s", at.isoformat(), exc)
            return None
        self.next_fit = fit_time + self.every.total_seconds()
        params = fitted.params
        await self.r.hset(self.keys.models, mapping={
            "version": version, "ltv": orjson.dumps(params.to_dict()), "clusters": fitted.clusters,
            "fitted_at": at.isoformat(), "next_fit": self.next_fit, "customers": fitted.customers,
            **{f"pop:{dim}": values for dim, values in fitted.population.items()},
        })
        log.info("population models version %d fitted at event time %s on %d customers in %.2fs: "
                 "BG/NBD r=%.3f alpha=%.3f a=%.3f b=%.3f, Gamma-Gamma p=%.3f q=%.3f v=%.3f", version,
                 at.isoformat(), fitted.customers, time.perf_counter() - started,
                 params.r, params.alpha, params.a, params.b, params.p, params.q, params.v)
        return version

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
    """What a fit stores: the parameters, the cluster model as stored, the number of customers,
    and each population dimension's values as of the fit, sorted (float64 bytes)."""

    params: ltv.LtvParams
    clusters: bytes
    customers: int
    population: dict[str, bytes]


def _fit_inputs(profiles: list[Profile], at: datetime, version: int) -> tuple[list[RfmSummary], list[dict[str, float]]]:
    """Every buyer's BTYD summary, and every customer's cluster-model input in learning order.

    Customers are taken in a shuffled order that depends only on the version, so the
    centres do not drift towards whichever customers happen to sort last. Profiles hold no
    event after ``at`` (partitions wait at the fit time); ``max`` only guards against one."""
    summaries = []
    for p in profiles:
        s = purchases.summary(p.days, max(at, p.last_seen))
        if s is not None:
            summaries.append(s)
    ordered = sorted(profiles, key=lambda p: p.customer_id)
    random.Random(version).shuffle(ordered)
    return summaries, [cluster_input(vector(p, max(at, p.last_seen))) for p in ordered]


def _population(profiles: list[Profile], params: ltv.LtvParams, at: datetime, horizon_days: float) -> dict[str, bytes]:
    """Recency (last purchase time), frequency (orders), spend and CLV over ``horizon_days`` of
    every customer who bought, as of ``at``, each sorted: the values the store ranks live."""
    buyers = [p for p in profiles if p.last_purchase is not None]
    clv = [round(ltv.clv(params, s, horizon_days), 2) for p in buyers
           if (s := purchases.summary(p.days, max(at, p.last_seen))) is not None]
    values = {"recency": [p.last_purchase.timestamp() for p in buyers if p.last_purchase is not None],
              "frequency": [float(p.purchases) for p in buyers], "monetary": [p.spend for p in profiles if p.spend > 0],
              "clv": [c for c in clv if math.isfinite(c)]}
    return {dim: np.sort(np.asarray(v, dtype=np.float64)).tobytes() for dim, v in values.items()}


def _fit(documents: list[bytes], clusters: bytes | None, n_clusters: int, at: datetime,
         version: int, horizon_days: float) -> Fitted:
    """In the fit process: decode the profile documents, fit lifetime value on the buyers'
    summaries, then teach the cluster model (stored as ``clusters``, or a new one of
    ``n_clusters``) every customer's input, and take the population's values as of ``at``.
    Profiles are taken by customer id, not in the order Redis scanned them: on a flat likelihood
    the optimum found depends on the order of the sums, and replays must agree."""
    profiles = sorted((codec.loads(Profile, d) for d in documents), key=lambda p: p.customer_id)
    model = ClusterModel.loads(clusters) if clusters is not None else ClusterModel(
        ClusterParams(n_clusters=n_clusters, min_learned=20 * n_clusters))
    summaries, inputs = _fit_inputs(profiles, at, version)
    params = ltv.fit(summaries, version, at)
    for x in inputs:
        model.learn(x)
    return Fitted(params, model.dumps(), len(profiles), _population(profiles, params, at, horizon_days))
