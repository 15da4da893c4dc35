"""The item model in Redis: the co-occurrence and popularity counters (``models.items``), written
with each batch's state and read, through a short-lived cache, for offers.

Where it lives, and why: the counters are shared by every partition (any customer's basket
teaches every other customer's offers), so they are global Redis sorted sets, not per-partition
state: ``P:items:pop`` (item -> decayed baskets holding it) and ``P:items:co:<item>`` (neighbour
-> decayed baskets holding both), with ``P:items:meta`` (landmark and half-life). A batch adds its
merged increments in the same MULTI/EXEC as its profiles and applied offsets, by one Lua call
(``ZINCRBY`` per counter, then the trim of each touched neighbour set), so a redelivered batch,
skipped by its offsets, adds nothing, and a crash before the commit adds nothing either: the
counters are as exactly-once as the profiles. Increments of different partitions commute, so
workers never conflict on them. A crash loses nothing that is not re-applied; scaling out adds
workers that all add to, and read from, the same sets.

Reads (``view``) fetch each needed item's heaviest neighbours, the items' weights and the most
popular items in one pipeline, and keep them ``ttl_s`` (2 s) in the worker: offers are at most that
much behind the counters, and a batch reads only the items it needs that are not cached (none,
mostly: one round trip every ``ttl_s`` refills what the batches ask for).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from streamproc.models.items import Increments, ItemParams, ItemView, Weighted
from streamproc.runtime.redis_keys import RedisKeys

APPLY = """
local trim = tonumber(ARGV[1])
local npop = tonumber(ARGV[2])
local i = 3
for _ = 1, npop do
  redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i])
  i = i + 2
end
for k = 2, #KEYS do
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    redis.call('ZINCRBY', KEYS[k], ARGV[i + 1], ARGV[i])
    i = i + 2
  end
  local size = redis.call('ZCARD', KEYS[k])
  if size > trim then
    redis.call('ZREMRANGEBYRANK', KEYS[k], 0, size - trim - 1)
  end
end
return 1
"""
CACHED = 100_000
"""Items whose neighbours a worker keeps at most (the cache is dropped whole beyond)."""


def apply_args(keys: RedisKeys, inc: Increments, trim: int) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the ``APPLY`` call for ``inc``."""
    by_item: dict[str, list[tuple[str, float]]] = {}
    for (a, b), w in inc.co.items():
        by_item.setdefault(a, []).append((b, w))
    names = [keys.items_popularity] + [keys.items_co(a) for a in by_item]
    args: list[Any] = [trim, len(inc.popularity)]
    for item, w in inc.popularity.items():
        args += [item, repr(w)]
    for row in by_item.values():
        args.append(len(row))
        for b, w in row:
            args += [b, repr(w)]
    return names, args


class RedisItems:
    """Writes a batch's increments in its transaction; reads views for offers, cached ``ttl_s``.

    The cache is dropped whole every ``ttl_s`` and refilled with the items asked for after that:
    a view is at most ``ttl_s`` behind the counters, and a batch pays for no per-item check. The
    view a call returns shares the cache's dicts, so it is read before the next call (as a batch's
    plan and a request's offers are)."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, params: ItemParams, ttl_s: float = 2.0) -> None:
        self.r, self.keys, self.params, self.ttl_s = client, keys, params, ttl_s
        self._neighbours: dict[str, list[Weighted]] = {}
        self._weights: dict[str, float] = {}
        self._top: list[Weighted] = []
        self._since = float("-inf")
        self.reads = 0
        """Round trips ``view`` made (the cache answered the others)."""

    def write(self, pipe: aioredis.client.Pipeline, inc: Increments) -> None:
        """Queue ``inc`` on the batch's transaction ``pipe``."""
        if inc.popularity or inc.co:
            names, args = apply_args(self.keys, inc, self.params.trim)
            pipe.eval(APPLY, len(names), *names, *args)

    async def view(self, items: Iterable[str], top: int) -> ItemView:
        """Neighbours and weights of ``items`` and the ``top`` most popular, as of at most ``ttl_s`` ago."""
        now = time.monotonic()
        if now - self._since > self.ttl_s or len(self._neighbours) > CACHED:
            self._neighbours, self._weights, self._top, self._since = {}, {}, [], now
        missing = sorted(i for i in set(items) if i not in self._neighbours)
        refresh_top = len(self._top) < top
        if missing or refresh_top:
            n = self.params.neighbours
            async with self.r.pipeline(transaction=False) as pipe:
                for i in missing:
                    pipe.zrevrange(self.keys.items_co(i), 0, n - 1, withscores=True)
                if missing:
                    pipe.zmscore(self.keys.items_popularity, missing)
                if refresh_top:
                    pipe.zrevrange(self.keys.items_popularity, 0, top - 1, withscores=True)
                got = await pipe.execute()
            self.reads += 1
            weights = got[len(missing)] if missing else []
            for i, row, w in zip(missing, got, weights):
                self._neighbours[i] = [(m.decode(), s) for m, s in row]
                self._weights[i] = w or 0.0
            if refresh_top:
                self._top = [(m.decode(), s) for m, s in got[-1]]
        return ItemView(self._neighbours, self._weights, self._top[:top], self.params)
