"""The population a batch is decided against, read from Redis in the batch's load pipeline.

In: sorted sets of every customer's last-purchase time, order count, spend and CLV (kept
by the store's writes) and the models hash (lifetime-value parameters and the cluster
model, written by ``runtime.refit``). Out: a ``Population`` with exact quantile bounds of
the live population and the current models.

Ranks are placed with the population sizes the previous read returned (one round trip,
not two); a population that grew since is off by the customers added in between.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
import redis.asyncio as aioredis

from streamproc.decisions.rfm import RFM_CUTS, Bounds
from streamproc.decisions.rules import Population
from streamproc.decisions.segments import TIER_CUTS
from streamproc.models.btyd import LtvParams
from streamproc.models.clusters import ClusterModel
from streamproc.runtime.keys import Keys

log = logging.getLogger(__name__)


class PopulationView:
    """Queues the population reads on a pipeline and builds ``Population`` from the replies."""

    def __init__(self, keys: Keys, top_fraction: float, min_population: int, margin: float) -> None:
        self.keys, self.top_fraction, self.min_population, self.margin = keys, top_fraction, min_population, margin
        self.dims: dict[str, tuple[str, tuple[float, ...]]] = {
            "recency": (keys.pop("recency"), RFM_CUTS), "frequency": (keys.pop("frequency"), RFM_CUTS),
            "monetary": (keys.spend, RFM_CUTS), "clv": (keys.pop("clv"), TIER_CUTS),
        }
        self.sizes: dict[str, int] = dict.fromkeys(self.dims, 0)
        self.ltv: LtvParams | None = None
        self.clusters: ClusterModel | None = None
        self.version = 0

    def _quantiles(self, cuts: tuple[float, ...]) -> list[float]:
        return Bounds(cuts, (), (), (), 0).quantiles(self.margin)

    def queue(self, pipe: aioredis.client.Pipeline) -> None:
        """Add the reads to ``pipe``; ``parse`` takes their replies in the same order."""
        top = max(math.ceil(self.sizes["monetary"] * self.top_fraction) - 1, 0)
        pipe.zrevrange(self.keys.spend, top, top, withscores=True)
        for dim, (key, cuts) in self.dims.items():
            pipe.zcard(key)
            n = self.sizes[dim]
            for q in self._quantiles(cuts):
                rank = math.floor(q * max(n - 1, 0))
                pipe.zrange(key, rank, rank, withscores=True)
        pipe.hget(self.keys.models, "version")

    def parse(self, replies: list[Any]) -> tuple[Population, int]:
        """The population, and the models version stored in Redis (reload when it differs)."""
        top, i = replies[0], 1
        bounds: dict[str, Bounds | None] = {}
        for dim, (_, cuts) in self.dims.items():
            qs = self._quantiles(cuts)
            card, ranked = replies[i], replies[i + 1:i + 1 + len(qs)]
            i += 1 + len(qs)
            self.sizes[dim] = card
            ok = card >= self.min_population and all(ranked)
            bounds[dim] = Bounds.from_values(cuts, [float(r[0][1]) for r in ranked], card) if ok else None
        version = int(replies[i] or 0)
        top_spend = float(top[0][1]) if top and self.sizes["monetary"] >= self.min_population else None
        pop = Population(top_spend, bounds["recency"], bounds["frequency"], bounds["monetary"], bounds["clv"],
                         self.ltv, self.clusters)
        return pop, version

    async def reload(self, client: aioredis.Redis) -> None:
        """Read the current models (after ``parse`` reported a new version)."""
        doc = await client.hgetall(self.keys.models)
        self.version = int(doc.get(b"version", 0))
        self.ltv = LtvParams.from_dict(orjson.loads(doc[b"ltv"])) if b"ltv" in doc else None
        self.clusters = ClusterModel.loads(doc[b"clusters"]) if b"clusters" in doc else None
        log.info("population models version %d loaded (lifetime value %s, clusters %s)", self.version,
                 "yes" if self.ltv else "no", "yes" if self.clusters else "no")
