"""Behaviour clusters: an online k-means over customer feature vectors.

In:  one feature vector per customer, ``dict[str, float]`` with every name in ``FEATURES``
     (other keys are ignored; a value that is not finite is a ``ValueError``), to learn
     from (``learn``) or to place in a cluster (``assign``, which never learns).
Out: a cluster id (``int``, or ``None`` during cold start), the cluster centres in the
     features' own units (``centres``), a description in words (``describe``), and the
     whole model as bytes for Redis (``dumps`` / ``loads``).

The model is one River pipeline, ``FuncTransformer(log1p) | StandardScaler | KMeans``:

* Counts, amounts and recency (``HEAVY_TAILED``) are log1p-transformed first: a customer
  with 40 orders a month or 900 days of silence would otherwise dominate the scaler's
  standard deviation and squash every ordinary customer into one corner. The three shares
  in 0..1 are left as they are. The scaler then puts every feature on the population's
  running z-score, so a centre's coordinates read directly as "how unusual is this group",
  which is what ``describe`` reports. A centre that stops winning customers keeps its
  z-scores, so in the features' own units it moves with the population's mean and spread.
* ``KMeans`` is the one River clusterer whose ids keep their meaning: an id is one centre,
  which moves a little (``halflife``) towards each customer it wins and never changes its
  number. Measured on four synthetic behaviours, 5 seeds each, assigning one probe set after
  3,000 and again after 6,000 learned vectors: ``KMeans`` gave 100% of the probe the same
  id both times (about 30 µs a learn, 15 µs a predict). ``STREAMKMeans`` feeds the centres
  of never-won random starts back in as if they were data and lost behaviours (72-100%
  the same). ``CluStream`` reruns k-means from scratch on its micro-clusters every
  ``time_gap``, so ids are renumbered (down to 23% the same; 0.5 ms a learn). ``DBSTREAM``
  and ``DenStream`` rebuild clusters as connected components, so even the number of
  clusters changes as they learn (``DBSTREAM`` 4-9 clusters, 39-90% the same; ``DenStream``
  15-23 clusters, 1 ms a predict). ``TextClust`` clusters text.
* River's ``KMeans`` starts from random centres, and on the same data one of them often
  never wins a customer (12-15 seeds of 20), so two behaviours share a centre. Here the
  first ``min_learned`` vectors are kept instead (the cold start), the centres are seeded
  from them with the best of three k-means++ starts, each refined by Lloyd passes, and
  ``KMeans`` learns online from then on. Ids are numbered by group size at seeding, 0 the
  largest.
* The default of 6 centres is more than the behaviours one expects: a spare centre splits
  a large group in two, while a missing one merges a small group into a large one. With
  one behaviour at 3% of customers, 4 centres merged it in 2 seeds of 15 and 6 in none.

Cold start: until ``min_learned`` vectors have been learned there are no centres, so
``assign`` returns ``None`` (no cluster) and ``centres`` is empty.

Hysteresis: ``assign(x, current)`` keeps ``current`` unless the distance to its centre
exceeds the distance to the nearest centre by more than the factor ``switch_margin``, so a
customer near a boundary does not flap between two clusters as the profile changes a little.
Where two of 6 centres share one behaviour, a further 3,000 learned vectors move up to 16%
of customers across that split; with ``current`` given and the default margin, up to 6%.

Snapshots are pickles: ``loads`` must only be given bytes that ``dumps`` wrote (a pickle can
run code). ``learned`` only grows, so it serves as the snapshot's version. A snapshot is
about 5.5 kB; during the cold start it also holds the kept vectors (about 50 kB for 500).

Cost with 6 centres: ``learn`` 25-50 µs, ``assign`` 9-20 µs, ``loads`` 0.1-0.2 ms; the
one ``learn`` that ends the cold start also seeds the centres, about 15 ms for 500 vectors.

>>> buyer = {"visits_per_week": 4, "pages_per_visit": 6, "cart_rate": 0.5, "conversion": 0.4,
...          "orders_per_month": 5, "avg_order_value": 80, "days_since_last": 2, "satisfaction": 0.8}
>>> lapsed = {"visits_per_week": 0.1, "pages_per_visit": 3, "cart_rate": 0.0, "conversion": 0.0,
...           "orders_per_month": 0.1, "avg_order_value": 40, "days_since_last": 120, "satisfaction": 0.2}
>>> model = ClusterModel(ClusterParams(n_clusters=2, min_learned=20))
>>> for _ in range(10):
...     model.learn(buyer)
...     model.learn(lapsed)
>>> model.assign(buyer) != model.assign(lapsed)
True
>>> model.describe(model.assign(lapsed))
'lapsed, rare visitors, quick visits'
>>> round(model.centres()[model.assign(buyer)]["avg_order_value"], 2)
80.0
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
from river import cluster, compose, preprocessing

FEATURES: tuple[str, ...] = (
    "visits_per_week",
    "pages_per_visit",
    "cart_rate",
    "conversion",
    "orders_per_month",
    "avg_order_value",
    "days_since_last",
    "satisfaction",
)
HEAVY_TAILED = frozenset(
    {"visits_per_week", "pages_per_visit", "orders_per_month", "avg_order_value", "days_since_last"}
)
_in_order = itemgetter(*FEATURES)

# (phrase when the centre is above the population, phrase when below)
TRAITS: dict[str, tuple[str, str]] = {
    "visits_per_week": ("frequent visitors", "rare visitors"),
    "pages_per_visit": ("deep browsers", "quick visits"),
    "cart_rate": ("often add to cart", "seldom add to cart"),
    "conversion": ("high converters", "low converters"),
    "orders_per_month": ("frequent buyers", "rare buyers"),
    "avg_order_value": ("big baskets", "small baskets"),
    "days_since_last": ("lapsed", "recently active"),
    "satisfaction": ("happy", "unhappy"),
}
NOTABLE_Z = 0.5  # a trait is named when the centre is this many standard deviations off
TRACE_Z = 0.1  # closer than this to the mean, a trait is never named
MAX_TRAITS = 3
_SEED_STARTS = 3
_LLOYD_PASSES = 10


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """How the model clusters; every field is fixed for the life of a model.

    ``switch_margin`` is the hysteresis factor (1.0 switches at the exact boundary),
    ``halflife`` how far a centre moves towards each customer it wins (its memory is about
    ``1 / halflife`` customers), ``min_learned`` the cold start length.
    """

    n_clusters: int = 6
    halflife: float = 0.02
    switch_margin: float = 1.25
    min_learned: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_clusters < 1 or self.min_learned < self.n_clusters:
            raise ValueError("need n_clusters >= 1 and min_learned >= n_clusters")
        if not 0 < self.halflife <= 1 or self.switch_margin < 1:
            raise ValueError("need 0 < halflife <= 1 and switch_margin >= 1")


class ClusterModel:
    """Online behaviour clusters with stable ids; see the module docstring."""

    def __init__(self, params: ClusterParams = ClusterParams()) -> None:
        self.params = params
        self.learned = 0
        kmeans = cluster.KMeans(
            n_clusters=self.params.n_clusters, halflife=self.params.halflife, seed=self.params.seed
        )
        self._model = compose.FuncTransformer(_log_heavy) | preprocessing.StandardScaler() | kmeans
        self._warmup: list[dict[str, float]] | None = []  # log1p vectors of the cold start

    @property
    def ready(self) -> bool:
        """Whether the cold start is over and ``assign`` gives cluster ids."""
        return self._warmup is None

    def learn(self, x: dict[str, float]) -> None:
        """Learn one feature vector: the scaler, then the nearest centre.

        During the cold start the vector is kept instead, and the last one seeds the centres.
        """
        kept = self._warmup
        if kept is None:
            self._model.learn_one(x)
        else:
            logged = _log_heavy(x)
            self._scaler().learn_one(logged)
            kept.append(logged)
        self.learned += 1
        if kept is not None and len(kept) >= self.params.min_learned:
            self._seed(kept)

    def assign(self, x: dict[str, float], current: int | None = None) -> int | None:
        """The cluster of ``x``, keeping ``current`` unless another is clearly nearer.

        ``current`` may be ``None`` or an id this model does not have; then the nearest wins.
        """
        centres = self._z_centres()
        if not centres:
            return None
        point = _in_order(self._model.transform_one(x))
        dists = {c: math.dist(point, _in_order(centre)) for c, centre in centres.items()}
        nearest = min(dists, key=dists.__getitem__)
        if current in dists and dists[current] <= self.params.switch_margin * dists[nearest]:
            return current
        return nearest

    def centres(self) -> dict[int, dict[str, float]]:
        """Each cluster's centre in the features' own units (empty during cold start).

        A heavy-tailed feature's centre is ``expm1`` of its mean log1p, a geometric mean.
        """
        return {c: self._unscale(centre) for c, centre in self._z_centres().items()}

    def describe(self, cluster_id: int) -> str:
        """The cluster in words, against the whole population (see ``describe_all``)."""
        return describe_all(self._z_centres())[cluster_id]

    def dumps(self) -> bytes:
        """The whole model as bytes, for a snapshot in Redis."""
        state = (self.params, self.learned, self._model, self._warmup)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> ClusterModel:
        """The model a ``dumps`` snapshot holds; only for bytes ``dumps`` wrote."""
        params, learned, pipeline, warmup = pickle.loads(data)
        model = cls(params)
        model.learned, model._model, model._warmup = learned, pipeline, warmup
        return model

    def _seed(self, kept: list[dict[str, float]]) -> None:
        """End the cold start: centres from the kept vectors, numbered by group size."""
        scaler = self._scaler()
        points = np.array([_in_order(scaler.transform_one(x)) for x in kept])
        rng = np.random.default_rng(self.params.seed)
        centres = _seed_centres(points, self.params.n_clusters, rng)
        sizes = np.bincount(_nearest(points, centres), minlength=len(centres))
        for cid, row in enumerate(np.argsort(-sizes, kind="stable")):
            self._kmeans().centers[cid].update(zip(FEATURES, centres[row].tolist()))
        self._warmup = None

    def _scaler(self) -> preprocessing.StandardScaler:
        return self._model["StandardScaler"]

    def _kmeans(self) -> cluster.KMeans:
        return self._model["KMeans"]

    def _unscale(self, centre: dict[str, float]) -> dict[str, float]:
        scaler = self._scaler()
        out = {f: scaler.means[f] + centre[f] * math.sqrt(max(scaler.vars[f], 0.0)) for f in FEATURES}
        return {f: math.expm1(v) if f in HEAVY_TAILED else v for f, v in out.items()}

    def _z_centres(self) -> dict[int, dict[str, float]]:
        """The centres on the scaler's z-scale (none during the cold start)."""
        return {} if self._warmup is not None else self._kmeans().centers


def _log_heavy(x: Mapping[str, float]) -> dict[str, float]:
    """The features in model order, heavy-tailed ones as log1p (negatives read as 0)."""
    out = {f: math.log1p(max(x[f], 0.0)) if f in HEAVY_TAILED else float(x[f]) for f in FEATURES}
    if not all(map(math.isfinite, out.values())):
        raise ValueError(f"feature values must be finite: {x}")
    return out


def describe_all(z_centres: Mapping[int, Mapping[str, float]]) -> dict[int, str]:
    """Each centre in words, from its z-scores against the population; no two alike.

    A description names the 1-3 features furthest from the population mean (at least
    ``NOTABLE_Z`` standard deviations; "typical customers" when none is). When another
    centre would get the same words, the next features are named too, down to
    ``TRACE_Z``; centres that still read alike get their id added.

    >>> flat = dict.fromkeys(FEATURES, 0.0)
    >>> describe_all({0: flat | {"days_since_last": 2.1, "satisfaction": -1.2},
    ...               1: flat | {"orders_per_month": 1.5, "avg_order_value": 0.9},
    ...               2: flat | {"orders_per_month": 1.4, "avg_order_value": -0.8},
    ...               3: flat | {"visits_per_week": 0.2}})
    {0: 'lapsed, unhappy', 1: 'frequent buyers, big baskets', 2: 'frequent buyers, small baskets', 3: 'typical customers'}
    """
    ranked = {c: _ranked_traits(z) for c, z in z_centres.items()}
    return {c: _describe_one(c, ranked) for c in ranked}


def _describe_one(cluster_id: int, ranked: dict[int, list[tuple[str, float]]]) -> str:
    mine = ranked[cluster_id]
    others = [r for c, r in ranked.items() if c != cluster_id]
    shown = _notable(mine)
    while shown < len(mine) and _shared(mine, others, shown):
        shown += 1
    words = ", ".join(p for p, _ in mine[:shown]) or "typical customers"
    return f"{words} (cluster {cluster_id})" if _shared(mine, others, shown) else words


def _ranked_traits(z: Mapping[str, float]) -> list[tuple[str, float]]:
    """The phrase of every feature at least ``TRACE_Z`` off the mean, with that distance, furthest first."""
    order = sorted(FEATURES, key=lambda f: (-abs(z[f]), FEATURES.index(f)))
    return [(TRAITS[f][0] if z[f] > 0 else TRAITS[f][1], abs(z[f])) for f in order if abs(z[f]) >= TRACE_Z]


def _notable(traits: list[tuple[str, float]]) -> int:
    """How many traits a description names unless it has to tell itself apart from another."""
    return min(MAX_TRAITS, sum(z >= NOTABLE_Z for _, z in traits))


def _shared(mine: list[tuple[str, float]], others: list[list[tuple[str, float]]], n: int) -> bool:
    """Whether another centre's description could be the same first ``n`` phrases."""
    words = [p for p, _ in mine[:n]]
    return any(_notable(o) <= n and [p for p, _ in o[:n]] == words for o in others)


def _sq_dists(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distances, one row per point and one column per centre."""
    return ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return _sq_dists(points, centres).argmin(axis=1)


def _inertia(points: np.ndarray, centres: np.ndarray) -> float:
    return float(_sq_dists(points, centres).min(axis=1).sum())


def _seed_centres(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The best (lowest inertia) of a few k-means++ starts, each refined by Lloyd passes."""
    runs = [_lloyd(points, _kmeans_pp(points, k, rng)) for _ in range(_SEED_STARTS)]
    return min(runs, key=lambda c: _inertia(points, c))


def _kmeans_pp(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++: each next start drawn with probability proportional to squared distance."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = _sq_dists(points, np.array(centres)).min(axis=1)
        total = d2.sum()
        pick = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
    return np.array(centres)


def _lloyd(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Batch k-means passes; a centre that wins no point stays where it is."""
    for _ in range(_LLOYD_PASSES):
        nearest = _nearest(points, centres)
        centres = np.array([points[nearest == j].mean(axis=0) if (nearest == j).any() else centres[j]
                            for j in range(len(centres))])
    return centres
