"""The population a batch is decided against, read from Redis in the batch's load pipeline.

In: rankings of every customer's last-purchase time, order count, spend and CLV (kept
by the store's writes) and the models hash (lifetime-value parameters and the cluster
model, written by ``runtime.refit``). Out: a ``Population`` with exact quantile bounds of
the live population and the current models.

Once a population fit is made (``fit_time`` in the models hash), the bounds are those of
the population as of the last fit instead: the fit stores every customer's recency, frequency,
spend and CLV as of its fit time (``runtime.refit``), and the same quantile ranks are read from
those values. The bounds of a fit are then the same however fast each partition was drained,
and a read as of any time places a customer against the bounds of the last fit; before the
first fit the live rankings serve.
The live rankings serve a store without fits (the in-memory one, or fits turned off).

Ranks are placed with the population sizes the previous read returned (one round trip,
not two); a population that grew since is off by the customers added in between. The reads
run as one Lua script (``READ``), one command in the pipeline instead of one per rank. The
in-memory store places its ranks and builds its population with the same ``ranks`` and ``build``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import redis.asyncio as aioredis

from streamproc.decisions.rfm import RFM_CUTS, Bounds
from streamproc.decisions.rules import Population
from streamproc.decisions.segments import TIER_CUTS
from streamproc.models.clusters import ClusterModel
from streamproc.models.ltv import LtvParams
from streamproc.runtime.redis_keys import RedisKeys
from streamproc.state.profile import Profile

log = logging.getLogger(__name__)

# KEYS: the spend ranking, each dimension's sorted set, the models hash.
# ARGV: the top-spend rank, then per dimension the number of ranks and the ranks.
# Returns the top-spend score, per dimension its size and the score at each rank (false
# where the rank is empty), then the models version and the last fit time: what ZREVRANGE,
# ZCARD, ZRANGE and HGET return for them, one by one.
READ = """
local out = {}
local top = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[1], 'WITHSCORES')
out[1] = top[2] or false
local a = 2
for i = 2, #KEYS - 1 do
  out[#out + 1] = redis.call('ZCARD', KEYS[i])
  local n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    local got = redis.call('ZRANGE', KEYS[i], ARGV[a], ARGV[a], 'WITHSCORES')
    out[#out + 1] = got[2] or false
    a = a + 1
  end
end
out[#out + 1] = redis.call('HGET', KEYS[#KEYS], 'version')
out[#out + 1] = redis.call('HGET', KEYS[#KEYS], 'fit_time')
return out
"""


class PopulationView:
    """Queues the population reads on a pipeline and builds ``Population`` from the replies."""

    def __init__(self, keys: RedisKeys, top_fraction: float, min_population: int, margin: float) -> None:
        self.keys, self.top_fraction, self.min_population, self.margin = keys, top_fraction, min_population, margin
        self.dims: dict[str, tuple[str, tuple[float, ...]]] = {
            "recency": (keys.pop("recency"), RFM_CUTS), "frequency": (keys.pop("frequency"), RFM_CUTS),
            "monetary": (keys.spend, RFM_CUTS), "clv": (keys.pop("clv"), TIER_CUTS),
        }
        self.quantiles = {dim: Bounds(cuts, (), (), (), 0).quantiles(margin) for dim, (_, cuts) in self.dims.items()}
        self.sizes: dict[str, int] = dict.fromkeys(self.dims, 0)
        self.ltv: LtvParams | None = None
        self.clusters: ClusterModel | None = None
        self.fitted: dict[str, np.ndarray] = {}
        self.version = 0

    def top_rank(self) -> int:
        """The rank (from the top, 0 the largest) of the largest spend outside the top fraction: the
        ``floor(n * fraction)`` customers above it are the top spenders (``Population.top_spend``)."""
        return math.floor(self.sizes["monetary"] * self.top_fraction)

    def ranks(self, dim: str) -> list[int]:
        """The ranks (from the bottom) of ``dim``'s quantiles, placed with the last sizes read."""
        return _ranks(self.quantiles[dim], self.sizes[dim])

    def queue(self, pipe: aioredis.client.Pipeline) -> None:
        """Add the read to ``pipe`` (one command); ``parse`` takes its reply."""
        keys: list[str] = [self.keys.spend]
        args: list[int] = [self.top_rank()]
        for dim, (key, _) in self.dims.items():
            ranks = self.ranks(dim)
            keys.append(key)
            args += [len(ranks), *ranks]
        keys.append(self.keys.models)
        pipe.eval(READ, len(keys), *keys, *args)

    def parse(self, reply: list[Any]) -> tuple[Population, int, float | None]:
        """The population, the models version stored in Redis (reload when it differs) and the
        last fit time (None before the first fit: the live rankings are used)."""
        version, fitted_at = int(reply[-2] or 0), None if reply[-1] is None else float(reply[-1])
        if fitted_at is not None:
            return self.as_fitted(), version, fitted_at
        top, i = reply[0], 1
        cards: dict[str, int] = {}
        ranked: dict[str, list[Any]] = {}
        for dim in self.dims:
            n = len(self.quantiles[dim])
            cards[dim], ranked[dim] = reply[i], reply[i + 1:i + 1 + n]
            i += 1 + n
        return self.build(top, cards, ranked), version, None

    def as_fitted(self) -> Population:
        """The population of the last fit: the same quantile ranks, read from the values it stored."""
        cards = {dim: len(self.fitted.get(dim, ())) for dim in self.dims}
        ranked = {}
        for dim in self.dims:
            values = self.fitted.get(dim, np.empty(0))
            ranked[dim] = [float(values[r]) if r < len(values) else None for r in _ranks(self.quantiles[dim], len(values))]
        spend = self.fitted.get("monetary", np.empty(0))
        top_rank = math.floor(len(spend) * self.top_fraction)
        top = float(spend[len(spend) - 1 - top_rank]) if top_rank < len(spend) else None
        return self.build(top, cards, ranked)

    def build(self, top: Any, cards: dict[str, int], ranked: dict[str, list[Any]]) -> Population:
        """The population of the value at the top-spend rank (or None: no one outside the top fraction), each dimension's size,
        and its values at the quantile ranks (None where a rank is empty); the sizes are kept
        to place the next read's ranks."""
        bounds: dict[str, Bounds | None] = {}
        for dim, (_, cuts) in self.dims.items():
            card, values = cards[dim], ranked[dim]
            self.sizes[dim] = card
            ok = card >= self.min_population and all(r is not None for r in values)
            bounds[dim] = Bounds.from_values(cuts, [float(r) for r in values], card) if ok else None
        enough = self.sizes["monetary"] >= self.min_population
        top_spend = (float(top) if top is not None else 0.0) if enough else None  # None: every spender is top
        return Population(top_spend, bounds["recency"], bounds["frequency"], bounds["monetary"], bounds["clv"],
                          self.ltv, self.clusters)

    async def reload(self, client: aioredis.Redis) -> None:
        """Read the current models (after ``parse`` reported a new version)."""
        self.load(await client.hgetall(self.keys.models))

    def load(self, doc: dict[bytes, bytes]) -> None:
        """Take the models from the models hash ``doc`` as read."""
        self.version = int(doc.get(b"version", 0))
        self.ltv = LtvParams.from_dict(orjson.loads(doc[b"ltv"])) if b"ltv" in doc else None
        self.clusters = ClusterModel.loads(doc[b"clusters"]) if b"clusters" in doc else None
        self.fitted = {dim: np.frombuffer(doc[f"pop:{dim}".encode()], dtype=np.float64)
                       for dim in self.dims if f"pop:{dim}".encode() in doc}
        log.info("population models version %d loaded (lifetime value %s, clusters %s)", self.version,
                 "yes" if self.ltv else "no", "yes" if self.clusters else "no")


def _ranks(quantiles: list[float], n: int) -> list[int]:
    """The ranks (from the bottom) of ``quantiles`` in a population of ``n``."""
    return [math.floor(q * max(n - 1, 0)) for q in quantiles]


def rankings(p: Profile, old: Profile | None) -> Iterator[tuple[str, float]]:
    """``(dimension, score)`` of each population ranking ``p`` enters or moves in since ``old``
    (every ranking it belongs to when ``old`` is None); rankings are never left."""
    if p.spend > 0 and (old is None or p.spend != old.spend):
        yield "monetary", p.spend
    if p.last_purchase is not None and (old is None or p.last_purchase != old.last_purchase):
        yield "recency", p.last_purchase.timestamp()
    if p.last_purchase is not None and (old is None or old.last_purchase is None or p.purchases != old.purchases):
        yield "frequency", p.purchases
    if p.value is not None and (old is None or old.value is None or p.value.clv != old.value.clv):
        yield "clv", p.value.clv
