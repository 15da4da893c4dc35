"""Reading the worker's counters and segment sizes from Redis (for demo, bench and people)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

import orjson
import redis

from streamproc.decisions.rules import Population
from streamproc.frozen import replace
from streamproc.models.ltv import LtvParams
from streamproc.models.online import ChurnModel, SatisfactionModel
from streamproc.runtime.population import PopulationView
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.state import codec
from streamproc.state.profile import Profile

M = TypeVar("M", ChurnModel, SatisfactionModel)


@dataclass
class Totals:
    """The worker's counters at one moment."""

    counters: dict[str, float] = field(default_factory=dict)
    lifecycle: dict[str, int] = field(default_factory=dict)
    alerts: list[dict[str, object]] = field(default_factory=list)

    def count(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    @property
    def received(self) -> int:
        """Input records taken in once (redeliveries not counted)."""
        return sum(int(v) for k, v in self.counters.items() if k.startswith("in:"))

    @property
    def processed(self) -> int:
        """Input records whose fate is decided: applied, dropped as duplicates or dead-lettered.
        The others (``held``) wait for the watermark."""
        return self.count("applied") + self.count("duplicates") + self.count("dead_lettered")

    @property
    def by_topic(self) -> dict[str, int]:
        return self.by_prefix("in")

    def by_prefix(self, prefix: str) -> dict[str, int]:
        """Counters named ``<prefix>:<rest>``, by ``<rest>``."""
        n = len(prefix) + 1
        return {k[n:]: int(v) for k, v in self.counters.items() if k.startswith(prefix + ":")}

    @property
    def dead_letter_reasons(self) -> dict[str, int]:
        """Dead-lettered records by reason, over all topics (counters ``dlq:<topic>:<reason>``)."""
        out: dict[str, int] = {}
        for key, n in self.by_prefix("dlq").items():
            reason = key.rpartition(":")[2]
            out[reason] = out.get(reason, 0) + n
        return out

    @property
    def profiles(self) -> int:
        return sum(self.lifecycle.values())


class StatsReader:
    """Synchronous reads of the keys the worker maintains."""

    def __init__(self, redis_url: str, prefix: str = "sp") -> None:
        self.r = redis.Redis.from_url(redis_url)
        self.keys = RedisKeys(prefix)

    def snapshot(self, alerts: int = 5) -> Totals:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.stats)
        pipe.hgetall(self.keys.lifecycle_counts)
        pipe.lrange(self.keys.recent_alerts, 0, alerts - 1)
        stats, life, recent = pipe.execute()
        return Totals(
            counters={k.decode(): float(v) for k, v in stats.items()},
            lifecycle={k.decode(): int(v) for k, v in life.items() if int(v)},
            alerts=[orjson.loads(a) for a in recent],
        )

    def profile(self, customer_id: str) -> Profile | None:
        doc = self.r.get(self.keys.profile(customer_id))
        return codec.loads(Profile, doc) if doc else None

    def event_time(self) -> datetime | None:
        """The newest event time any input topic-partition has seen (None before the first event)."""
        marks = [float(v) for v in self.r.hvals(self.keys.watermarks)]
        return datetime.fromtimestamp(max(marks), timezone.utc) if marks else None

    def all_profiles(self) -> dict[str, Profile]:
        """Every stored profile by customer key (a SCAN: for tests and audits, not hot paths)."""
        keys = list(self.r.scan_iter(match=self.keys.profile("*"), count=1000))
        pipe = self.r.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
        profiles = (codec.loads(Profile, doc) for doc in pipe.execute() if doc)
        return {p.customer_id: p for p in profiles}

    def models(self, view: PopulationView | None = None) -> Population:
        """The models a worker scores with now: the published online models and the lifetime-value fit;
        with ``view``, also the population bounds and cluster model of the last fit (none before it)."""
        churn, satisfaction = self.r.hmget(self.keys.online_models, "churn", "satisfaction")
        doc = self.r.hgetall(self.keys.models)
        online = {"churn": _loaded(ChurnModel, churn), "satisfaction": _loaded(SatisfactionModel, satisfaction)}
        if view is not None and b"fit_time" in doc:
            view.load(doc)
            return replace(view.as_fitted(), **online)
        ltv = doc.get(b"ltv")
        return Population(ltv=LtvParams.from_dict(orjson.loads(ltv)) if ltv else None, **online)

    def close(self) -> None:
        self.r.close()


def _loaded(kind: type[M], data: bytes | None) -> M | None:
    """A published model snapshot, or None when there is none or it has another layout (the
    learner replaces it with its next version)."""
    try:
        return kind.loads(data) if data else None
    except (TypeError, ValueError, AttributeError, ModuleNotFoundError):
        return None
