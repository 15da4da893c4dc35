"""The single learner: trains the online models from the training-examples topic, exactly once.

In: batches of training-example records from the one partition of the training-examples
topic (so one worker of the group owns training). Out: the learner's whole state (models
and metrics) and the offset of the last example learned, written together in one Redis
transaction after every batch (``RedisKeys.learner``); every ``publish_examples`` examples or
``publish_s`` seconds a new version of both models for the scorers (``RedisKeys.online_models``),
which every worker loads on its next batch; a ``model-health`` record and a log line when a
model's error drifts up.

Exactly once: examples at or below the stored offset are redeliveries and are skipped; the
state is written before the batch is acknowledged to Kafka, so a crash between the two
re-learns nothing, and a crash before the write re-learns the batch from the previous state.
A learner that finds the stored offset moved (another worker owned the partition meanwhile)
reloads the state before learning.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from streamproc.decisions.rules import Population
from streamproc.frozen import replace
from streamproc.models.metrics import Drift
from streamproc.models.online import ChurnModel, SatisfactionModel
from streamproc.models.training import IncompatibleState, LearnerState
from streamproc.records import Example
from streamproc.runtime.redis_keys import RedisKeys

log = logging.getLogger(__name__)
Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[object]]]


def health_record(ex: Example, drift: Drift, version: int) -> dict[str, Any]:
    """The model-health record of a drift (``topics/schemas/model-health.v1.json``)."""
    eid = hashlib.blake2b(f"drift|{ex.model}|{ex.event_id}".encode(), digest_size=16).hexdigest()
    return {
        "event_id": eid, "type": "model_health", "model": ex.model, "ts": ex.ts, "kind": "drift",
        "message": (f"{ex.model} model error rose from {drift.mean_before:.3f} to {drift.mean_after:.3f} "
                    f"(ADWIN, after {drift.at_count} labels)"),
        "model_version": version,
        "details": {"mean_error_before": drift.mean_before, "mean_error_after": drift.mean_after,
                    "labels": drift.at_count, "example_id": ex.event_id},
    }


HISTORY = 2000
"""Points ``RedisKeys.models_history`` keeps (one per published version)."""


def history_point(figures: dict[str, Any], version: int, published_at: float, event_ts: str | None) -> dict[str, Any]:
    """A published version's headline figures (rolling windows, with the baselines on the same
    labels, and drift counts): one point of the dashboard's model charts."""
    churn, sat = figures.get("churn", {}), figures.get("satisfaction", {})
    rolling, srolling = churn.get("rolling", {}), sat.get("rolling", {})
    return {
        "version": version, "published_at": published_at, "event_ts": event_ts,
        "churn": {"labels": churn.get("labels"), "served_auc": churn.get("served", {}).get("rolling_auc"),
                  "model_auc": rolling.get("auc"), "ece": rolling.get("ece"),
                  "baselines": {k: v.get("auc") for k, v in rolling.get("baselines", {}).items()},
                  "candidate": churn.get("served", {}).get("candidate"),
                  "drifts": churn.get("drift", {}).get("detections", 0)},
        "satisfaction": {"labels": sat.get("labels"), "mae": srolling.get("mae"),
                         "baseline_mae": srolling.get("mean_baseline_mae"),
                         "drifts": sat.get("drift", {}).get("detections", 0)},
    }


class Learner:
    """Owns ``LearnerState`` for the worker that holds the training partition."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, send: Send, health_topic: str, *,
                 publish_examples: int, publish_s: float, timeout_s: float, horizon_days: float) -> None:
        self.r, self.keys, self.send, self.health_topic = client, keys, send, health_topic
        self.horizon_days = horizon_days
        self.publish_examples, self.publish_s, self._timeout = publish_examples, publish_s, timeout_s
        self.state: LearnerState | None = None
        self.offset = -1
        self.version = 0
        self._since_publish = 0
        self._published_at = time.monotonic()
        self._event_ts: str | None = None
        self._lock = asyncio.Lock()

    async def _load(self) -> None:
        doc = await self.r.hgetall(self.keys.learner)
        self.state = self._state(doc.get(b"state"))
        self.offset = int(doc.get(b"offset", -1))
        self.version = int(await self.r.hget(self.keys.online_models, "version") or 0)
        log.info("learner state loaded: %d churn and %d satisfaction examples learned, offset %d, version %d",
                 self.state.churn.learned, self.state.satisfaction.learned, self.offset, self.version)

    def _state(self, data: bytes | None) -> LearnerState:
        """The stored state; a fresh one when there is none, or when an older streamproc wrote
        it in a layout this one cannot read (the models then learn afresh from the next example)."""
        if data is None:
            return LearnerState(horizon_days=self.horizon_days)
        try:
            return LearnerState.loads(data)
        except IncompatibleState as exc:
            log.warning("the learner state in %s cannot be used (%s): the models learn afresh from the "
                        "next training example, and the next published version replaces the old one",
                        self.keys.learner, exc)
            return LearnerState(horizon_days=self.horizon_days)

    async def handle(self, records: list[tuple[int, bytes | None]]) -> None:
        """Learn the ``(offset, value)`` records not learned yet; returns once the state is durable."""
        while True:
            try:
                async with self._lock, asyncio.timeout(self._timeout):
                    return await self._handle(records)
            except WatchError:
                log.info("the learner's state moved under it (another owner of the partition); reloading")
                self.state = None

    async def flush(self) -> None:
        """Publish what was learned since the last version once ``publish_s`` has passed, though no
        example follows (the last examples of a quiet spell reach the scorers too). Only while this
        learner's state is the stored one: after another owner has learned, it drops its state."""
        async with self._lock:
            if self.state is None or not self._due():
                return
            try:
                async with asyncio.timeout(self._timeout), self.r.pipeline(transaction=True) as pipe:
                    await pipe.watch(self.keys.learner)
                    if int(await pipe.hget(self.keys.learner, "offset") or -1) != self.offset:
                        self.state = None
                        return
                    pipe.multi()
                    self._publish(pipe)
                    await pipe.execute()
            except WatchError:
                self.state = None

    async def _handle(self, records: list[tuple[int, bytes | None]]) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            await pipe.watch(self.keys.learner)
            stored = await pipe.hget(self.keys.learner, "offset")
            if self.state is None or int(stored or -1) != self.offset:
                await self._load()
            assert self.state is not None
            health, last = [], self.offset
            for offset, value in records:
                if offset <= self.offset:
                    continue
                last = max(last, offset)
                ex = self._example(offset, value)
                if ex is None:
                    continue
                drift = self.state.learn(ex)
                self._since_publish += 1
                self._event_ts = str(ex.ts)
                if drift is not None:
                    log.warning("drift in the %s model: error %.3f -> %.3f after %d labels", ex.model,
                                drift.mean_before, drift.mean_after, drift.at_count)
                    health.append(health_record(ex, drift, self.version))
            if last == self.offset:
                return
            await self._publish_health(health)
            pipe.multi()
            if self._due():
                self._publish(pipe)
            pipe.hset(self.keys.learner, mapping={"state": self.state.dumps(), "offset": last})
            await pipe.execute()
            self.offset = last

    def _example(self, offset: int, value: bytes | None) -> Example | None:
        try:
            return Example.from_record(orjson.loads(value or b""))
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            log.error("training example at offset %d is unreadable and is skipped: %s", offset, exc)
            return None

    async def _publish_health(self, records: list[dict[str, Any]]) -> None:
        futs = [await self.send(self.health_topic, r["model"].encode(), orjson.dumps(r)) for r in records]
        if futs:
            await asyncio.gather(*futs)

    def _due(self) -> bool:
        return self._since_publish >= self.publish_examples or (
            self._since_publish > 0 and time.monotonic() - self._published_at >= self.publish_s)

    def _publish(self, pipe: aioredis.client.Pipeline) -> None:
        assert self.state is not None
        self.version += 1
        self.state.churn.version = self.state.satisfaction.version = self.version
        figures, now = self.state.figures(), time.time()
        pipe.hset(self.keys.online_models, mapping={
            "version": self.version, "churn": self.state.churn.dumps(),
            "satisfaction": self.state.satisfaction.dumps(), "figures": orjson.dumps(figures),
            "published_at": now,
        })
        pipe.rpush(self.keys.models_history, orjson.dumps(history_point(figures, self.version, now, self._event_ts)))
        pipe.ltrim(self.keys.models_history, -HISTORY, -1)
        self._since_publish, self._published_at = 0, time.monotonic()
        log.info("online models version %d published (%d churn, %d satisfaction examples learned)", self.version,
                 self.state.churn.learned, self.state.satisfaction.learned)


class OnlineModels:
    """A scoring worker's copy of the learner's latest published models.

    ``refresh`` reads the published version at most every ``check_s`` seconds and loads both
    models when it changed (a pickle of about 2 KB each, never per event); ``population``
    hands them to the pipeline with the rest of the population.
    """

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, check_s: float = 1.0) -> None:
        self.r, self.keys, self.check_s = client, keys, check_s
        self.version = 0
        self.churn: ChurnModel | None = None
        self.satisfaction: SatisfactionModel | None = None
        self._checked = float("-inf")

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.check_s:
            return
        self._checked = now
        version = int(await self.r.hget(self.keys.online_models, "version") or 0)
        if version == self.version:
            return
        churn, satisfaction, version_again = await self.r.hmget(self.keys.online_models, "churn", "satisfaction",
                                                                "version")
        if churn is None or satisfaction is None:
            return
        self.version = int(version_again or version)
        try:
            self.churn, self.satisfaction = ChurnModel.loads(churn), SatisfactionModel.loads(satisfaction)
        except (TypeError, AttributeError, pickle.UnpicklingError) as exc:
            self.churn = self.satisfaction = None
            log.warning("online models version %d in %s cannot be loaded (%s: written by another streamproc "
                        "version?); scoring without them until the learner publishes the next version",
                        self.version, self.keys.online_models, exc)
            return
        log.info("online models version %d loaded", self.version)

    def population(self, pop: Population) -> Population:
        if self.churn is None:
            return pop
        return replace(pop, churn=self.churn, satisfaction=self.satisfaction)
