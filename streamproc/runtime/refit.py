"""Population fits: lifetime-value parameters and the behaviour-cluster model, every few days of event time.

In: every profile in Redis and the watermark of the worker's partitions. Out: a new version
in the models hash (``RedisKeys.models``): BG/NBD and Gamma-Gamma parameters fitted by maximum
likelihood (``models.btyd``), the cluster model after one more online pass over the
population's feature vectors (``models.clusters``), and the event time of the next fit.
Every worker's store loads a new version on its next batch and uses it until the next one.

Fits are scheduled in event time (``STREAMPROC_LTV_REFIT_DAYS`` after the previous fit, or
after the first watermark seen), so a replay fits at the same points of its history. One
worker fits at a time (a lock key with a timeout); the fit runs beside the stream in a
background task, and the CPU-heavy part (decoding the profiles, the maximum-likelihood fits
and the cluster model's pass) runs in a child process of its own, so that it takes neither
the event loop's time nor its interpreter lock.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone

import orjson
import redis.asyncio as aioredis

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
    """Starts a population fit in the background when the watermark passes the scheduled time."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, *, every: timedelta, clusters: int) -> None:
        self.r, self.keys, self.every, self.clusters = client, keys, every, clusters
        self.next_fit: float | None = None
        self.task: asyncio.Task[None] | None = None
        self._pool: ProcessPoolExecutor | None = None

    def poke(self, watermark: float) -> None:
        """Called after each batch with the newest watermark of the worker's partitions."""
        if self.task is not None and not self.task.done():
            return
        if self.next_fit is not None and watermark < self.next_fit:
            return
        self.task = asyncio.get_running_loop().create_task(self._guarded(watermark))

    async def _guarded(self, watermark: float) -> None:
        try:
            await self.run(watermark)
        except Exception:  # a failed fit keeps the previous version; the stream goes on
            log.exception("population fit failed; the previous models stay in use")
            self.next_fit = watermark + RETRY_AFTER.total_seconds()

    async def run(self, watermark: float) -> int | None:
        """Fit if due at ``watermark``; returns the new version, or None if nothing was fitted."""
        lock = f"{self.keys.models}:lock"
        if not await self.r.set(lock, b"1", nx=True, ex=LOCK_S):
            return None
        try:
            return await self._run(watermark)
        finally:
            await self.r.delete(lock)

    async def _run(self, watermark: float) -> int | None:
        doc = await self.r.hgetall(self.keys.models)
        if b"next_fit" not in doc:
            self.next_fit = watermark + self.every.total_seconds()
            await self.r.hsetnx(self.keys.models, "next_fit", self.next_fit)
            log.info("first population fit scheduled at event time %s", _utc(self.next_fit).isoformat())
            return None
        self.next_fit = float(doc[b"next_fit"])
        if watermark < self.next_fit:
            return None
        started = time.perf_counter()
        documents = await self._documents()
        version = int(doc.get(b"version", 0)) + 1
        at = _utc(watermark)
        try:
            params, clusters, customers = await asyncio.get_running_loop().run_in_executor(
                self._fitter(), _fit, documents, doc.get(b"clusters"), self.clusters, at, version)
        except BrokenProcessPool:
            self._pool = None  # the fit process died: the next fit starts another
            raise
        except ltv.FitError as exc:
            self.next_fit = watermark + RETRY_AFTER.total_seconds()
            await self.r.hset(self.keys.models, "next_fit", self.next_fit)
            log.info("population fit at %s postponed by a day: %s", at.isoformat(), exc)
            return None
        self.next_fit = watermark + self.every.total_seconds()
        await self.r.hset(self.keys.models, mapping={
            "version": version, "ltv": orjson.dumps(params.to_dict()), "clusters": clusters,
            "fitted_at": at.isoformat(), "next_fit": self.next_fit, "customers": customers,
        })
        log.info("population models version %d fitted at event time %s on %d customers in %.2fs: "
                 "BG/NBD r=%.3f alpha=%.3f a=%.3f b=%.3f, Gamma-Gamma p=%.3f q=%.3f v=%.3f", version,
                 at.isoformat(), customers, time.perf_counter() - started,
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


def _fit_inputs(profiles: list[Profile], at: datetime, version: int) -> tuple[list[RfmSummary], list[dict[str, float]]]:
    """Every buyer's BTYD summary, and every customer's cluster-model input in learning order.

    Customers are taken in a shuffled order that depends only on the version, so the
    centres do not drift towards whichever customers happen to sort last."""
    summaries = []
    for p in profiles:
        s = purchases.summary(p.days, max(at, p.last_seen))
        if s is not None:
            summaries.append(s)
    ordered = sorted(profiles, key=lambda p: p.customer_id)
    random.Random(version).shuffle(ordered)
    return summaries, [cluster_input(vector(p, max(at, p.last_seen))) for p in ordered]


def _fit(documents: list[bytes], clusters: bytes | None, n_clusters: int, at: datetime,
         version: int) -> tuple[ltv.LtvParams, bytes, int]:
    """In the fit process: decode the profile documents, fit lifetime value on the buyers'
    summaries, then teach the cluster model (stored as ``clusters``, or a new one of
    ``n_clusters``) every customer's input. Returns the parameters, the cluster model as
    stored and the number of customers."""
    profiles = [codec.loads(Profile, d) for d in documents]
    model = ClusterModel.loads(clusters) if clusters is not None else ClusterModel(
        ClusterParams(n_clusters=n_clusters, min_learned=20 * n_clusters))
    summaries, inputs = _fit_inputs(profiles, at, version)
    params = ltv.fit(summaries, version, at)
    for x in inputs:
        model.learn(x)
    return params, model.dumps(), len(profiles)
