"""Prometheus metrics at ``/metrics`` (prometheus-client), ``streamproc_`` prefix, seconds as the unit.

Two kinds, both without a per-customer label:

* this worker's own, measured in its main process: batch apply time (``streamproc_batch_apply_seconds``,
  from handing a batch to the processing process to its effects being durable), the delay from an
  event's production (the Kafka record timestamp) to its being applied
  (``streamproc_event_delay_seconds``), and its consumer lag per input topic-partition, with
  kafka_exporter's label names (``consumergroup``, ``topic``, ``partition``), in records and in seconds;
* the whole deployment's, read from Redis at each scrape (every worker reports the same values: take
  one, or ``max`` over workers): records in per topic, events applied, duplicates, dead letters by
  topic and reason, late events, held events, outputs by topic, alerts suppressed by rule and why,
  Redis round trips and batches, webhook answers by endpoint and status, the served models' metrics
  and versions, and segment sizes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from streamproc.runtime.redis_keys import RedisKeys
from streamproc.runtime.webhooks import Keys as WebhookKeys

OUTPUTS = {"segment_changes": "segments", "alerts": "alerts", "examples": "training-examples", "dead_lettered": "dead-letter"}
DIMENSIONS = ("lifecycle", "rfm", "value", "cluster")
Lag = tuple[str, int, int, float]
"""``(topic, partition, records behind, seconds behind)``."""


@dataclass
class Snapshot:
    stats: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, int]] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    model_version: int = 0
    population_version: int = 0


class Metrics:
    """The worker's registry; ``render`` reads Redis, then writes the exposition text."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, group: str, lag: Callable[[], Iterable[Lag]]) -> None:
        self.r, self.keys, self.group, self.lag = client, keys, group, lag
        self.registry = CollectorRegistry()
        self.batch_seconds = Histogram(
            "streamproc_batch_apply_seconds", "Time from handing a batch to the processing process to its effects "
            "being durable.", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry)
        self.delay_seconds = Histogram(
            "streamproc_event_delay_seconds", "Time from an event's production (its Kafka record timestamp) to its "
            "being applied.", buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=self.registry)
        self._snap = Snapshot()
        self.registry.register(self)

    def applied(self, seconds: float, produced: Iterable[float | None], now: float | None = None) -> None:
        """A batch applied in ``seconds``, of records produced at ``produced`` (epoch seconds)."""
        now = time.time() if now is None else now
        self.batch_seconds.observe(seconds)
        for ts in produced:
            if ts is not None and ts > 0:
                self.delay_seconds.observe(max(now - ts, 0.0))

    async def render(self) -> bytes:
        self._snap = await self.read()
        return generate_latest(self.registry)

    async def read(self) -> Snapshot:
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.stats)
            for dim in DIMENSIONS:
                pipe.hgetall(self.keys.segments(dim))
            pipe.hgetall(WebhookKeys(self.keys.prefix).stats)
            pipe.hmget(self.keys.online_models, "version", "figures")
            pipe.hget(self.keys.models, "version")
            res = await pipe.execute()
        stats, *segs, hooks, (version, figures), pop_version = res[0], *res[1:1 + len(DIMENSIONS)], *res[1 + len(DIMENSIONS):]
        return Snapshot(
            stats={k.decode(): float(v) for k, v in stats.items()},
            segments={dim: {k.decode(): int(v) for k, v in s.items()} for dim, s in zip(DIMENSIONS, segs)},
            webhooks={k.decode(): int(v) for k, v in hooks.items()},
            models=orjson.loads(figures) if figures else {}, model_version=int(version or 0),
            population_version=int(pop_version or 0))

    def collect(self) -> Iterator[Metric]:  # noqa: C901 - one family after another
        s = self._snap
        by = _by_prefix(s.stats)
        yield _counter("streamproc_records_in", "Input records taken in (redeliveries not counted).", ["topic"],
                       [((t,), n) for t, n in by("in")])
        for name, key, doc in (("streamproc_events_applied", "applied", "Events applied to profiles."),
                               ("streamproc_duplicates", "duplicates", "Resent events dropped by id."),
                               ("streamproc_redelivered_records", "redelivered", "Records at or below an applied offset, skipped."),
                               ("streamproc_batches", "batches", "Batches written."),
                               ("streamproc_redis_round_trips", "redis_round_trips",
                                "Round trips to Redis of the batches (divide by streamproc_batches_total: per batch).")):
            yield _counter(name, doc, [], [((), s.stats.get(key, 0.0))])
        dead = [((parts[0], parts[1]), n) for k, n in by("dlq") if len(parts := k.split(":", 1)) == 2]
        yield _counter("streamproc_dead_letters", "Records dead-lettered, by source topic and reason.", ["topic", "reason"], dead)
        yield _counter("streamproc_late_events", "Events older than their partition's newest by more than the allowed "
                       "lateness.", ["topic"], [((t,), n) for t, n in by("late")])
        held = GaugeMetricFamily("streamproc_held_events", "Events waiting for their partition's watermark.")
        held.add_metric([], s.stats.get("held", 0.0))
        yield held
        yield _counter("streamproc_outputs", "Records published, by topic.", ["topic"],
                       [((topic,), s.stats.get(key, 0.0)) for key, topic in OUTPUTS.items()])
        supp = [((p[0], p[1]), n) for k, n in by("suppressed") if len(p := k.rsplit(":", 1)) == 2]
        yield _counter("streamproc_alerts_suppressed", "Alerts a rule's condition called for that did not go out "
                       "then: cooldown, cap, quiet_hours (dropped), held (until the quiet hours end).", ["rule", "why"], supp)
        hooks = [((p[0], p[1]), float(n)) for k, n in s.webhooks.items() if len(p := k.rsplit(":", 1)) == 2]
        yield _counter("streamproc_webhook_answers", "Webhook delivery attempts by endpoint and HTTP status "
                       "('None': no answer).", ["endpoint", "status"], hooks)
        for name in ("delivered", "dead", "queued"):
            yield _counter(f"streamproc_webhooks_{name}", f"Webhook deliveries {name}.", [],
                           [((), float(s.webhooks.get(name, 0)))])
        yield from self._models(s)
        sizes = GaugeMetricFamily("streamproc_segment_customers", "Customers per segment.", labels=["dimension", "segment"])
        for dim, counts in s.segments.items():
            for seg, n in sorted(counts.items()):
                sizes.add_metric([dim, seg], n)
        yield sizes
        lag = GaugeMetricFamily("streamproc_consumergroup_lag", "Records of an input topic-partition not yet applied "
                                "by this worker (kafka_exporter's labels).", labels=["consumergroup", "topic", "partition"])
        lag_s = GaugeMetricFamily("streamproc_consumergroup_lag_seconds", "How old the newest applied record of a "
                                  "topic-partition with records behind it is; 0 when caught up.",
                                  labels=["consumergroup", "topic", "partition"])
        for topic, partition, behind, seconds in self.lag():
            lag.add_metric([self.group, topic, str(partition)], behind)
            lag_s.add_metric([self.group, topic, str(partition)], seconds)
        yield lag
        yield lag_s

    def _models(self, s: Snapshot) -> Iterator[Metric]:
        version = GaugeMetricFamily("streamproc_model_version", "Version of the published models.", labels=["model"])
        version.add_metric(["online"], s.model_version)
        version.add_metric(["population"], s.population_version)
        yield version
        churn, sat = s.models.get("churn", {}), s.models.get("satisfaction", {})
        auc = GaugeMetricFamily("streamproc_churn_auc", "ROC AUC of churn scores on matured labels (the served "
                                "score, the model's own and the baselines'), whole stream and rolling window.",
                                labels=["score", "window"])
        served = churn.get("served", {})
        for score, whole, rolling in (("served", served.get("auc"), served.get("rolling_auc")),
                                      ("model", churn.get("auc"), churn.get("rolling", {}).get("auc"))):
            _add(auc, [score, "whole"], whole)
            _add(auc, [score, "rolling"], rolling)
        for name, b in churn.get("baselines", {}).items():
            _add(auc, [name, "whole"], b.get("auc"))
        yield auc
        mae = GaugeMetricFamily("streamproc_satisfaction_mae", "Mean absolute error of predicted satisfaction (0-1) "
                                "and of the running-mean baseline.", labels=["score", "window"])
        _add(mae, ["model", "whole"], sat.get("mae"))
        _add(mae, ["model", "rolling"], sat.get("rolling", {}).get("mae"))
        _add(mae, ["mean_baseline", "whole"], sat.get("mean_baseline_mae"))
        yield mae


def _add(family: GaugeMetricFamily, labels: list[str], value: Any) -> None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        family.add_metric(labels, float(value))


def _by_prefix(stats: dict[str, float]) -> Callable[[str], list[tuple[str, float]]]:
    def by(prefix: str) -> list[tuple[str, float]]:
        n = len(prefix) + 1
        return sorted((k[n:], v) for k, v in stats.items() if k.startswith(prefix + ":"))
    return by


def _counter(name: str, doc: str, labels: list[str], values: Iterable[tuple[tuple[str, ...], float]]) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=labels)
    for lv, v in values:
        c.add_metric(list(lv), v)
    return c
