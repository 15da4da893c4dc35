"""The store contract (``streamproc.runtime.store.base``), the same tests against both stores:
``MemoryStore`` in process memory and ``RedisStore`` on a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis

from streamproc.decisions.rules import Population
from streamproc.ordering import Consumed, Held
from streamproc.pipeline import apply_batch
from streamproc.plan import Changes
from streamproc.records import Click, Item, Purchase
from streamproc.runtime import assemble
from streamproc.runtime.store import Conflict, RedisStore, Store
from streamproc.settings import Settings
from streamproc.state.items import Increments, increments, merge, weight
from streamproc.state.profile import Profile, new_profile
from tests.builders import RULES, SETTINGS

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEYS = Settings().pseudonymiser()
MakeStore = Callable[[], Store]


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest) -> MakeStore:
    if request.param == "memory":
        return lambda: assemble.memory_store(SETTINGS)
    url = request.getfixturevalue("redis_url")
    return lambda: assemble.redis_store(SETTINGS, aioredis.Redis.from_url(url))


def run(make: MakeStore, scenario: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        store = make()
        try:
            return await scenario(store)
        finally:
            if isinstance(store, RedisStore):
                await store.r.aclose()
    return asyncio.run(go())


def changes(**kw: Any) -> Changes:
    base: dict[str, Any] = dict(profiles={}, partition_of={}, outputs=[], offsets={}, high_marks={}, stats={},
                                started_at=0.0, partitions=[0])
    return Changes(**{**base, **kw})


async def write(store: Store, ch: Changes) -> None:
    async with store.guard(list(ch.partitions)) as guard:
        await store.write(ch, guard)


def clicked(cid: str) -> Profile:
    return new_profile(Click("e0", cid, T0, "s", "/", "page_view"))


def held(offset: int, minute: int) -> Held:
    event = Click(f"e{offset}", "C1", T0 + timedelta(minutes=minute), "s", "/", "page_view")
    return Held.of(Consumed("clickstream", 0, offset, f'{{"n": {offset}}}'.encode(), event), KEYS)


def test_profiles_offsets_and_high_marks_read_back_as_written(make: MakeStore) -> None:
    async def scenario(store: Store) -> tuple[Any, ...]:
        await write(store, changes(profiles={"C1": clicked("C1")}, partition_of={"C1": 0},
                                   offsets={"clickstream:0": 4, "purchases:0": 2}, high_marks={"clickstream:0": 9.5}))
        loaded = await store.load(["C1", "C2"], ["clickstream:0", "feedback:0"])
        return loaded.profiles, loaded.offsets, loaded.high_marks, await store.profiles(["C1", "C2"])

    profiles, offsets, marks, stored = run(make, scenario)
    assert profiles == {"C1": clicked("C1"), "C2": None} and stored == {"C1": clicked("C1")}
    assert offsets == {"clickstream:0": 4} and marks == {"clickstream:0": 9.5}


def test_a_write_after_another_writer_changed_a_guarded_partition_conflicts(make: MakeStore) -> None:
    async def scenario(store: Store) -> tuple[int | None, bool]:
        async with store.guard([0]) as late:
            async with store.guard([0, 1]) as early:
                await store.write(changes(offsets={"clickstream:0": 10}), early)
            async with store.guard([1]) as other:  # a write of partition 0 leaves partition 1's guards alone
                await store.write(changes(offsets={"clickstream:1": 3}, partitions=[1]), other)
            with pytest.raises(Conflict):
                await store.write(changes(offsets={"clickstream:0": 5}, profiles={"C1": clicked("C1")},
                                          partition_of={"C1": 0}), late)
        loaded = await store.load(["C1"], ["clickstream:0", "clickstream:1"])
        return loaded.offsets.get("clickstream:0"), loaded.profiles["C1"] is None

    assert run(make, scenario) == (10, True)


def test_an_outbox_stays_until_published_and_a_newer_one_is_kept(make: MakeStore) -> None:
    async def scenario(store: Store) -> list[list[bytes]]:
        tps = ["clickstream:0", "clickstream:1"]
        await write(store, changes(partitions=[0, 1], outbox=b"first"))
        seen = [(await store.load([], tps)).outboxes]
        await store.published([0, 1], b"other")
        await write(store, changes(partitions=[0], outbox=b"second"))
        seen.append((await store.load([], tps)).outboxes)
        await store.published([0, 1], b"first")
        seen.append((await store.load([], tps)).outboxes)
        await write(store, changes(partitions=[0]))
        seen.append((await store.load([], tps)).outboxes)
        return seen

    assert run(make, scenario) == [[b"first"], [b"second", b"first"], [b"second"], []]


def test_held_events_are_released_oldest_first_by_the_watermark(make: MakeStore) -> None:
    events = [held(5, 3), held(6, 1), held(7, 2)]

    async def scenario(store: Store) -> tuple[Any, ...]:
        await write(store, changes(hold=events))
        early = await store.waiting({0: (T0 + timedelta(minutes=2)).timestamp()}, 10)
        capped = await store.waiting({0: (T0 + timedelta(minutes=9)).timestamp()}, 2)
        none = await store.waiting({0: float("-inf")}, 10)
        await write(store, changes(release=capped.held))
        rest = await store.waiting({0: (T0 + timedelta(minutes=9)).timestamp()}, 10)
        return early, capped, none, rest

    early, capped, none, rest = run(make, scenario)
    assert [h.record.offset for h in early.held] == [6, 7]
    assert early.watermarks == {0: (T0 + timedelta(minutes=2)).timestamp()}
    assert [h.record.offset for h in capped.held] == [6, 7]
    assert capped.watermarks == {0: (T0 + timedelta(minutes=2)).timestamp()}  # lowered to the newest released
    assert none.held == [] and none.due == {}
    assert [h.record for h in rest.held] == [events[0].record]
    assert rest.held[0].record.value == b'{"n":5}'  # the bytes, identifiers keyed, as held


def test_customers_are_due_once_the_watermark_passes_their_timer(make: MakeStore) -> None:
    async def scenario(store: Store) -> tuple[dict[str, int], dict[str, int]]:
        await write(store, changes(profiles={"C1": clicked("C1")}, partition_of={"C1": 0}))
        before = await store.waiting({0: T0.timestamp()}, 10)
        after = await store.waiting({0: (T0 + timedelta(days=400)).timestamp()}, 10)
        return before.due, after.due

    assert run(make, scenario) == ({}, {"C1": 0})


def purchasers(n: int) -> dict[str, Profile]:
    orders = [Purchase(f"o{i}", f"C{i}", T0 + timedelta(hours=i), f"o{i}", (Item("S", 1, float(i)),), float(i), "EUR")
              for i in range(1, n + 1)]
    return apply_batch(orders, {}, Population(), RULES).profiles


def test_the_population_is_ranked_over_the_profiles_written(make: MakeStore) -> None:
    profiles = purchasers(20)

    async def scenario(store: Store) -> Any:
        await write(store, changes(profiles=profiles, partition_of=dict.fromkeys(profiles, 0)))
        return (await store.load([], [])).population

    pop = run(make, scenario)
    assert pop.top_spend == 16.0  # the 5th largest spend: the 4 above it are the top 20% of 20 customers
    assert pop.monetary is not None and pop.monetary.size == 20 and pop.frequency is not None
    assert pop.recency is not None and pop.recency.size == 20


def test_hourly_counts_add_up_across_batches(make: MakeStore) -> None:
    async def scenario(store: Store) -> dict[int, dict[str, int]]:
        await write(store, changes(hourly={3600: {"flow:>new": 2, "alert:r": 1}}))
        await write(store, changes(hourly={3600: {"flow:>new": 1}, 7200: {"flow:new>active": 1}}))
        if isinstance(store, RedisStore):
            hours = [int(h) for h in await store.r.zrange(store.keys.hourly(), 0, -1)]
            return {h: {k.decode(): int(v) for k, v in (await store.r.hgetall(store.keys.hourly(h))).items()}
                    for h in hours}
        return {h: dict(c) for h, c in store.state.hourly.items()}  # type: ignore[attr-defined]

    assert run(make, scenario) == {3600: {"flow:>new": 3, "alert:r": 1}, 7200: {"flow:new>active": 1}}


def test_item_counters_sum_trim_and_read_back_in_zrevrange_order(make: MakeStore) -> None:
    ts = T0 + timedelta(days=40)
    baskets = [["cam", "lens", "bag"], ["cam", "lens"], ["cam", "tripod"], ["tea"]]
    crowd = Increments({"cam": 1.0}, {("cam", f"x{i:03d}"): 0.5 + i / 1000 for i in range(130)})

    async def scenario(store: Store) -> tuple[Any, ...]:
        params = store.rules.items
        assert params is not None
        await write(store, changes(items=merge(increments(b, ts, params) for b in baskets[:2])))
        await write(store, changes(items=merge([increments(b, ts, params) for b in baskets[2:]] + [crowd])))
        view = await store.items(["cam", "lens", "tea", "nothing"], 5)
        assert view is not None
        size = await store.r.zcard(store.keys.items_co("cam")) if isinstance(store, RedisStore) else len(store.table.co["cam"])  # type: ignore[attr-defined]
        return dict(view.neighbours), dict(view.weights), list(view.top), size

    neighbours, weights, top, size = run(make, scenario)
    w = weight(ts, SETTINGS.rules().items)  # type: ignore[arg-type]
    assert neighbours["lens"] == [("cam", 2 * w), ("bag", w)] and neighbours["nothing"] == []
    assert neighbours["cam"][0] == ("lens", 2 * w) and len(neighbours["cam"]) == SETTINGS.rules().items.neighbours  # type: ignore[union-attr]
    assert weights == {"cam": 3 * w + 1.0, "lens": 2 * w, "tea": w, "nothing": 0.0}
    assert [item for item, _ in top] == ["cam", "lens", "tripod", "tea", "bag"]  # equal weights: member descending
    assert size == SETTINGS.rules().items.trim  # type: ignore[union-attr]
