"""Behaviour clusters on synthetic customers of four clearly different behaviours."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import pytest

from streamproc.models.clusters import FEATURES, HEAVY_TAILED, ClusterModel, ClusterParams, describe_all

BEHAVIOURS: dict[str, dict[str, float]] = {
    "loyal": {"visits_per_week": 4.0, "pages_per_visit": 6.0, "cart_rate": 0.5, "conversion": 0.35,
              "orders_per_month": 5.0, "avg_order_value": 60.0, "days_since_last": 2.0, "satisfaction": 0.8},
    "browser": {"visits_per_week": 5.0, "pages_per_visit": 15.0, "cart_rate": 0.15, "conversion": 0.02,
                "orders_per_month": 0.3, "avg_order_value": 40.0, "days_since_last": 1.0, "satisfaction": 0.5},
    "bargain": {"visits_per_week": 2.0, "pages_per_visit": 8.0, "cart_rate": 0.4, "conversion": 0.2,
                "orders_per_month": 2.0, "avg_order_value": 12.0, "days_since_last": 5.0, "satisfaction": 0.6},
    "lapsed": {"visits_per_week": 0.2, "pages_per_visit": 3.0, "cart_rate": 0.05, "conversion": 0.05,
               "orders_per_month": 0.1, "avg_order_value": 45.0, "days_since_last": 90.0, "satisfaction": 0.2},
}
PARAMS = ClusterParams(n_clusters=4, min_learned=400, seed=3)

Labelled = list[tuple[str, dict[str, float]]]


def customer(behaviour: str, rng: random.Random) -> dict[str, float]:
    """One noisy customer: heavy-tailed features scattered by ~35%, shares by +-0.08."""
    return {f: v * math.exp(rng.gauss(0, 0.35)) if f in HEAVY_TAILED else min(1.0, max(0.0, rng.gauss(v, 0.08)))
            for f, v in BEHAVIOURS[behaviour].items()}


def customers(n: int, seed: int, weights: tuple[float, ...] = (1, 1, 1, 1)) -> Labelled:
    """A shuffled stream of ``n`` customers, behaviours mixed by ``weights`` (evenly by default)."""
    rng = random.Random(seed)
    return [(b, customer(b, rng)) for b in rng.choices(list(BEHAVIOURS), weights, k=n)]


def trained(params: ClusterParams = PARAMS, stream_seed: int = 1) -> ClusterModel:
    model = ClusterModel(params)
    for _, x in customers(3000, stream_seed):
        model.learn(x)
    return model


def purity(labels: list[str], ids: list[int | None]) -> float:
    """Share of customers in their cluster's most common behaviour."""
    by_cluster: dict[int | None, Counter[str]] = defaultdict(Counter)
    for label, cid in zip(labels, ids):
        by_cluster[cid][label] += 1
    return sum(max(c.values()) for c in by_cluster.values()) / len(labels)


def majority(model: ClusterModel, probe: Labelled) -> dict[str, int | None]:
    votes: dict[str, Counter[int | None]] = defaultdict(Counter)
    for label, x in probe:
        votes[label][model.assign(x)] += 1
    return {label: c.most_common(1)[0][0] for label, c in votes.items()}


def along(a: dict[str, float], b: dict[str, float], t: float) -> dict[str, float]:
    """The point a fraction ``t`` of the way from ``a`` to ``b`` in the model's own scale."""
    return {f: math.expm1((1 - t) * math.log1p(a[f]) + t * math.log1p(b[f])) if f in HEAVY_TAILED
            else (1 - t) * a[f] + t * b[f] for f in a}


@pytest.fixture(scope="module")
def model() -> ClusterModel:
    return trained()


@pytest.fixture(scope="module")
def probe() -> Labelled:
    return customers(1000, 2)


def test_clusters_are_mostly_pure_per_behaviour(model: ClusterModel, probe: Labelled) -> None:
    labels = [label for label, _ in probe]
    ids = [model.assign(x) for _, x in probe]
    rng = random.Random(0)
    assert purity(labels, ids) >= 0.95
    assert purity(labels, [rng.randrange(4) for _ in ids]) < 0.4
    assert len(set(majority(model, probe).values())) == 4


def test_descriptions_are_distinct_and_name_the_traits(model: ClusterModel, probe: Labelled) -> None:
    words = {label: model.describe(cid) for label, cid in majority(model, probe).items()}
    assert len(set(words.values())) == 4
    assert "lapsed" in words["lapsed"] and "unhappy" in words["lapsed"]
    assert "small baskets" in words["bargain"]
    assert "frequent buyers" in words["loyal"]
    assert "deep browsers" in words["browser"]


def test_descriptions_stay_distinct_when_centres_split_a_behaviour() -> None:
    model = trained(ClusterParams(n_clusters=6, min_learned=400, seed=3))
    words = [model.describe(cid) for cid in model.centres()]
    assert len(set(words)) == 6


def test_words_go_further_until_two_centres_read_differently() -> None:
    flat = dict.fromkeys(FEATURES, 0.0)
    buyers = flat | {"orders_per_month": 2.0, "avg_order_value": 1.5, "conversion": 1.0}
    words = describe_all({0: buyers | {"satisfaction": 0.4}, 1: buyers | {"satisfaction": -0.4}})
    assert words == {0: "frequent buyers, big baskets, high converters, happy",
                     1: "frequent buyers, big baskets, high converters, unhappy"}


def test_centres_that_read_alike_get_their_id() -> None:
    flat = dict.fromkeys(FEATURES, 0.0)
    assert describe_all({0: flat, 1: flat | {"cart_rate": 0.05}}) == {
        0: "typical customers (cluster 0)", 1: "typical customers (cluster 1)"}


def test_describe_unknown_cluster_is_a_key_error(model: ClusterModel) -> None:
    with pytest.raises(KeyError):
        model.describe(99)


def test_ids_keep_their_meaning_as_learning_continues(model: ClusterModel, probe: Labelled) -> None:
    before = majority(model, probe)
    later = ClusterModel.loads(model.dumps())
    for _, x in customers(3000, 7):
        later.learn(x)
    assert majority(later, probe) == before


def test_a_centre_follows_its_customers_and_keeps_its_id(model: ClusterModel, probe: Labelled) -> None:
    later = ClusterModel.loads(model.dumps())
    loyal = majority(later, probe)["loyal"]
    rng = random.Random(8)
    for _ in range(1500):
        x = customer("loyal", rng)
        later.learn(x | {"avg_order_value": 2 * x["avg_order_value"]})
    assert majority(later, probe)["loyal"] == loyal
    assert later.centres()[loyal]["avg_order_value"] == pytest.approx(120, rel=0.15)


def test_ids_are_numbered_by_group_size() -> None:
    model = ClusterModel(PARAMS)
    for _, x in customers(PARAMS.min_learned, 6, weights=(2, 1, 4, 8)):
        model.learn(x)
    ids = majority(model, customers(400, 2))
    assert [ids[b] for b in ("lapsed", "bargain", "loyal", "browser")] == [0, 1, 2, 3]


def test_near_the_boundary_the_current_cluster_is_kept(model: ClusterModel, probe: Labelled) -> None:
    ids = majority(model, probe)
    a, b = ids["loyal"], ids["bargain"]
    assert a is not None and b is not None
    centres = model.centres()
    just_past = along(centres[a], centres[b], 0.55)  # distances 0.55 : 0.45, within the 1.25 margin
    assert model.assign(just_past) == b
    assert model.assign(just_past, current=a) == a
    assert model.assign(along(centres[a], centres[b], 0.6), current=a) == b


def test_a_customer_clearly_elsewhere_moves(model: ClusterModel, probe: Labelled) -> None:
    ids = majority(model, probe)
    lapsed = customer("lapsed", random.Random(5))
    assert model.assign(lapsed, current=ids["loyal"]) == ids["lapsed"]
    assert model.assign(lapsed, current=42) == ids["lapsed"]


def test_assign_never_learns(model: ClusterModel, probe: Labelled) -> None:
    centres, learned = model.centres(), model.learned
    for _, x in probe:
        model.assign(x)
    assert model.centres() == centres and model.learned == learned


def test_snapshot_round_trip_assigns_the_same(model: ClusterModel, probe: Labelled) -> None:
    copy = ClusterModel.loads(model.dumps())
    assert copy.learned == model.learned == 3000
    assert copy.centres() == model.centres()
    assert [copy.assign(x, 0) for _, x in probe] == [model.assign(x, 0) for _, x in probe]


def test_cold_start_assigns_no_cluster() -> None:
    model = ClusterModel(PARAMS)
    stream = customers(PARAMS.min_learned, 4)
    assert model.assign(stream[0][1]) is None and model.centres() == {}
    for _, x in stream[:-1]:
        model.learn(x)
    assert model.assign(stream[0][1]) is None and not model.ready
    with pytest.raises(KeyError):
        model.describe(0)
    model.learn(stream[-1][1])
    assert model.ready and model.assign(stream[0][1]) in range(PARAMS.n_clusters)


def test_snapshot_taken_during_cold_start_seeds_the_same_centres() -> None:
    stream = customers(PARAMS.min_learned, 4)
    straight, resumed = ClusterModel(PARAMS), ClusterModel(PARAMS)
    for _, x in stream[:100]:
        resumed.learn(x)
    resumed = ClusterModel.loads(resumed.dumps())
    for _, x in stream[100:]:
        resumed.learn(x)
    for _, x in stream:
        straight.learn(x)
    assert resumed.centres() == straight.centres()


def test_same_seed_same_model(probe: Labelled) -> None:
    one, two = trained(), trained()
    assert one.centres() == two.centres()
    assert [one.describe(c) for c in one.centres()] == [two.describe(c) for c in two.centres()]
    assert [one.assign(x) for _, x in probe] == [two.assign(x) for _, x in probe]


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_value_that_is_not_finite_is_refused_before_anything_is_learned(
        model: ClusterModel, value: float) -> None:
    later = ClusterModel.loads(model.dumps())
    x = customer("loyal", random.Random(9)) | {"avg_order_value": value}
    with pytest.raises(ValueError):
        later.learn(x)
    with pytest.raises(ValueError):
        later.assign(x)
    assert later.learned == model.learned and later.centres() == model.centres()


@pytest.mark.parametrize("bad", [{"min_learned": 3}, {"switch_margin": 0.9}, {"halflife": 0.0}])
def test_params_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ClusterParams(n_clusters=4, **bad)
