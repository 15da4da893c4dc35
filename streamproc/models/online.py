"""Online churn and satisfaction models: River linear pipelines that learn from each matured label.

In:  feature vectors, ``dict[str, float]`` with the names of ``streamproc.features.vector.FEATURES``
     (other keys are ignored; a missing one is a ``KeyError``, a value that is not finite a
     ``ValueError``); to learn, the label too. The satisfaction model also reads
     ``text_sentiment``, the VADER compound score of the feedback's text
     (``streamproc.ingest.sentiment.compound``), 0 when the feedback has no text.
Out: P(churn) in [0, 1] and its ``reasons``; a satisfaction estimate in [0, 1]; each model
     as bytes for a Redis snapshot (``dumps`` / ``loads``, ``publish``).

Both models are ``StandardScaler | clip | linear model``, learned by plain SGD:

* Heavy-tailed counts, amounts and durations (``HEAVY_TAILED``) are log1p-transformed first,
  as in ``models.clusters``: 300 days of silence is not ten times the news of 30.
* The scaler puts each input on the population's running z-score, so one learning rate
  suits every feature and a weight reads as "per standard deviation". The z-scores are
  clipped to +-``Z_CLIP`` (3): on MovieLens (100,004 ratings replayed as feedback, with the
  history features computed as ``vector`` does) a rater's first rating after months of
  silence gave z-scores above 10, and unclipped SGD at lr 0.02 diverged (MAE 0.30 against
  the mean baseline's 0.19); clipped, 0.165.
* SGD rather than AdaGrad, whose steps only shrink so it stops following drift, or Adam,
  which was no more accurate (MovieLens MAE 0.159, as SGD's at lr 0.005) and 25% slower
  to learn. A small L2 keeps the weights of features that do not matter near 0.

``ChurnModel`` (``LogisticRegression``, lr 0.02) learns ``(snapshot.features, label)`` from
``streamproc.state.labels``: label 1 says the customer was inactive for the churn horizon
after the snapshot. It starts from the recency rule as a prior: besides the scaled inputs,
its log-odds include ``RECENCY_PRIOR``, ``log((days_since_last + 0.5) / horizon)`` unscaled,
whose weight starts at 1 (the intercept at -1): before its first label the model serves the
recency rule's ranking, and from then on learns corrections to it, the prior's own weight
included. Churn labels arrive one horizon after their snapshot and rarely at first (on the
generator's streams the first churners stop about half-way through), so a model that
starts at 0.5 serves its first months of scores from negatives only, and learns that
inactivity means loyalty before it sees a churner: on a generated year (500 customers,
21,469 labels, 752 churned; ``streamproc evaluate``) the served AUC was 0.83 without the
prior against the recency rule's 0.89, and 0.90 with it.
Positives weigh ``weight`` in the loss, a weight that follows the label rate learned so far
(``positive_weight``): ``sqrt((negatives + 1) / (positives + 1))`` clipped to
``WEIGHT_RANGE`` (1/4 to 4), so a rare churn (3-7 % of labels on the generator) weighs up to
4 and a majority churn (81 % of labels on one real log at a 30-day horizon) about 1/2; it
starts at 1. It replaced a constant 2, designed for churn as the rare class. A weighted
loss learns the odds times the weight, so ``predict`` divides them by the weight in force:
the probabilities stay calibrated as long as the rate moves slowly.
``CHURN_FEATURES`` holds the customer's recency, cadence, tenure, basket, engagement and
mood, one input for each: counts that only grow with tenure
(``orders``, ``spend``, ``frequency``, ``feedbacks``, ``max_order``, ``abandoned_value``) repeat
``T_days`` times a cadence; ``recency_days`` is about ``T_days - days_since_purchase``,
``monetary`` about ``avg_order_value``, ``days_between_visits`` about ``7 / visits_per_week``
and ``satisfaction`` a longer memory of ``satisfaction_recent``. Two inputs that say the
same thing split one weight between them unpredictably, which would make ``reasons``
unreadable. ``items_per_order``, ``top_category_share`` and ``visit_minutes`` describe what
is bought and how, not whether the customer comes back. ``reasons`` gives each input's
weight times its clipped z-score: its part in the log-odds against a customer at the
population mean; the prior's part (its weight times its distance from its running mean)
counts as ``days_since_last``'s.

``SatisfactionModel`` (``LinearRegression``, lr 0.01, starting at 0.5) predicts the 0-1
satisfaction of a feedback before its rating is known, clipped to [0, 1], and estimates a
feedback that comes with text only, from which it never learns. Its contract: the
features are ``vector(profile, ts)`` of the profile *before* the feedback is applied, plus
``text_sentiment``, so ``satisfaction``, ``satisfaction_recent``, ``satisfaction_trend``,
``sentiment`` and ``feedbacks`` describe earlier feedback only, never the rating to predict.
On MovieLens (no text) it has MAE 0.161 (0.159 at lr 0.005, which relearns half as fast);
a Hoeffding tree had 0.162 at 24 µs a predict and 120 µs a learn, an adaptive random
forest of 5 trees 0.161 at 220 µs and 1.4 ms, and tree snapshots are hundreds of kB.

Cost (a shared 2-core machine, several runs): churn ``predict`` 10-18 µs, ``learn`` 45-60 µs,
``reasons`` 20-28 µs; satisfaction ``predict`` 9-14 µs, ``learn`` 23-36 µs. A snapshot is about 1.9 kB
(churn) or 1.7 kB, ``dumps`` plus ``loads`` about 0.3 ms.

Snapshots are pickles: ``loads`` must only be given bytes that ``dumps`` wrote (a pickle can
run code). ``learned`` counts labels learned; ``version`` counts published snapshots and
only ``publish`` changes it.

>>> quiet = {f: 0.0 for f in CHURN_FEATURES} | {"days_since_last": 60.0, "visits_per_week": 0.1}
>>> active = {f: 0.0 for f in CHURN_FEATURES} | {"days_since_last": 1.0, "visits_per_week": 4.0}
>>> model = ChurnModel()
>>> for _ in range(200):
...     model.learn(quiet, 1)
...     model.learn(active, 0)
>>> model.predict(quiet) > 0.9 > 0.1 > model.predict(active)
True
>>> [(r.feature, r.direction) for r in model.reasons(quiet, k=2)]
[('days_since_last', 'raises risk'), ('visits_per_week', 'raises risk')]
>>> ChurnModel.loads(model.publish()).predict(quiet) == model.predict(quiet), model.version
(True, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Self

from river import linear_model, optim, preprocessing, stats

from streamproc.models.pickled import Pickled
from streamproc.models.river_compat import set_weight

CHURN_FEATURES: tuple[str, ...] = (
    "days_since_last",
    "days_since_purchase",
    "visits_per_week",
    "orders_per_month",
    "T_days",
    "avg_order_value",
    "pages_per_visit",
    "cart_rate",
    "conversion",
    "abandoned_carts",
    "satisfaction_recent",
    "satisfaction_trend",
    "sentiment",
)
TEXT_SENTIMENT = "text_sentiment"
SATISFACTION_FEATURES: tuple[str, ...] = (
    TEXT_SENTIMENT,
    "satisfaction",
    "satisfaction_recent",
    "satisfaction_trend",
    "sentiment",
    "feedbacks",
    "days_since_purchase",
    "orders_per_month",
    "avg_order_value",
    "abandoned_carts",
)
HEAVY_TAILED = frozenset({
    "days_since_last", "days_since_purchase", "visits_per_week", "orders_per_month", "T_days",
    "avg_order_value", "pages_per_visit", "abandoned_carts", "feedbacks",
})

Direction = Literal["raises risk", "lowers risk"]


@dataclass(frozen=True, slots=True)
class OnlineParams:
    """SGD step size and L2 penalty of a linear model; fixed for the life of a model."""

    lr: float
    l2: float

    def __post_init__(self) -> None:
        if not self.lr > 0 or not self.l2 >= 0:
            raise ValueError("need lr > 0 and l2 >= 0")


CHURN_PARAMS = OnlineParams(lr=0.02, l2=1e-4)
SATISFACTION_PARAMS = OnlineParams(lr=0.01, l2=1e-4)
RECENCY_PRIOR = "recency_prior"
"""The churn model's prior input: the recency rule's log-odds (``ChurnModel.prior``)."""
PRIOR_INTERCEPT = -1.0
WEIGHT_RANGE = (0.25, 4.0)
"""The positive class's weight in the churn loss stays within these bounds (``positive_weight``)."""
Z_CLIP = 3.0
"""Scaled inputs are clipped to +-``Z_CLIP`` standard deviations before the linear model."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One feature's part in a churn score: ``contribution`` to the log-odds against an average customer.

    ``value`` is the customer's raw feature value; ``contribution`` is the feature's weight
    times its clipped z-score (of the log1p for a heavy-tailed feature), so a customer
    exactly at the population mean gets 0 from every feature.
    """

    feature: str
    value: float
    contribution: float
    direction: Direction


class _OnlineModel(Pickled):
    """What both models share: inputs, counters and snapshots."""

    features: tuple[str, ...]
    defaults: OnlineParams
    LAYOUT = 1
    """Bumped when the pickled layout changes: ``loads`` refuses a snapshot of another layout."""

    def __init__(self, params: OnlineParams | None = None) -> None:
        self.layout = self.LAYOUT
        self.params = params or self.defaults
        self.learned = 0
        self.version = 0
        self._scaler = preprocessing.StandardScaler()

    @classmethod
    def loads(cls, data: bytes) -> Self:
        """The model ``dumps`` wrote; a ``TypeError`` if another class's or another layout's."""
        model = super().loads(data)
        if getattr(model, "layout", 1) != cls.LAYOUT:
            raise TypeError(f"{cls.__name__} snapshot of layout {getattr(model, 'layout', 1)}; "
                            f"this streamproc reads layout {cls.LAYOUT}")
        return model

    def publish(self) -> bytes:
        """Bump ``version`` and return the snapshot to publish under it."""
        self.version += 1
        return self.dumps()

    def _inputs(self, x: Mapping[str, float]) -> dict[str, float]:
        return inputs(x, self.features)

    def _scaled(self, raw: dict[str, float]) -> dict[str, float]:
        return _clip(self._scaler.transform_one(raw))


class ChurnModel(_OnlineModel):
    """P(churn within ``horizon_days``) from ``CHURN_FEATURES`` and the recency prior; see the module docstring."""

    features = CHURN_FEATURES
    defaults = CHURN_PARAMS
    LAYOUT = 2  # 2: the positive weight follows the label rate; the served candidate

    def __init__(self, params: OnlineParams | None = None, horizon_days: float = 30.0) -> None:
        super().__init__(params)
        if not horizon_days > 0:
            raise ValueError("need horizon_days > 0")
        self.horizon_days = horizon_days
        self._regression = linear_model.LogisticRegression(
            optimizer=optim.SGD(self.params.lr), l2=self.params.l2,
            loss=optim.losses.Log(), intercept_init=PRIOR_INTERCEPT)
        set_weight(self._regression, RECENCY_PRIOR, 1.0)
        self._prior_mean = stats.Mean()
        self.positives = 0
        self.served = "model"
        """The candidate the scorers serve (``models.serving``); the learner sets it before publishing."""

    @property
    def weight(self) -> float:
        """The positive class's weight in force: ``positive_weight`` of the labels learned so far."""
        return positive_weight(self.positives, self.learned - self.positives)

    def prior(self, x: Mapping[str, float]) -> float:
        """The recency rule's log-odds, ``log((days_since_last + 0.5) / horizon_days)``."""
        return math.log((max(x["days_since_last"], 0.0) + 0.5) / self.horizon_days)

    def _linear(self, x: Mapping[str, float]) -> dict[str, float]:
        raw = self._inputs(x)
        return self._scaled(raw) | {RECENCY_PRIOR: self.prior(x)}

    def predict(self, x: Mapping[str, float]) -> float:
        """P(churn) of feature vector ``x``; before anything is learned, the prior's."""
        q = float(self._regression.predict_proba_one(self._linear(x))[True])
        return q / (q + self.weight * (1.0 - q))  # the learned odds divided by the weight

    def learn(self, x: Mapping[str, float], y: int) -> None:
        """Learn one matured label: ``y`` 1 churned, 0 retained."""
        raw = self._inputs(x)
        self._scaler.learn_one(raw)
        prior = self.prior(x)
        self._prior_mean.update(prior)
        self._regression.learn_one(self._scaled(raw) | {RECENCY_PRIOR: prior}, bool(y), w=self.weight if y else 1.0)
        self.learned += 1
        self.positives += 1 if y else 0

    def reasons(self, x: Mapping[str, float], k: int = 3) -> list[Reason]:
        """The ``k`` features that move ``x``'s log-odds most, largest first; none that move it not at all."""
        z = self._linear(x)
        weights = self._regression.weights
        parts = {f: weights.get(f, 0.0) * z[f] for f in self.features}
        parts["days_since_last"] += weights.get(RECENCY_PRIOR, 0.0) * (z[RECENCY_PRIOR] - self._prior_mean.get())
        top = sorted((p for p in parts.items() if p[1] != 0.0), key=lambda p: -abs(p[1]))[:k]
        return [Reason(f, float(x[f]), c, "raises risk" if c > 0 else "lowers risk") for f, c in top]


class SatisfactionModel(_OnlineModel):
    """Satisfaction 0-1 of a feedback from ``SATISFACTION_FEATURES``; see the module docstring."""

    features = SATISFACTION_FEATURES
    defaults = SATISFACTION_PARAMS

    def __init__(self, params: OnlineParams | None = None) -> None:
        super().__init__(params)
        self._regression = linear_model.LinearRegression(
            optimizer=optim.SGD(self.params.lr), l2=self.params.l2, intercept_init=0.5)

    def predict(self, x: Mapping[str, float]) -> float:
        """Expected satisfaction of the feedback ``x`` describes, clipped to [0, 1]."""
        y = self._regression.predict_one(self._scaled(self._inputs(x)))
        return min(1.0, max(0.0, float(y)))

    def learn(self, x: Mapping[str, float], y: float) -> None:
        """Learn the feedback's actual satisfaction ``y`` (0-1)."""
        raw = self._inputs(x)
        self._scaler.learn_one(raw)
        self._regression.learn_one(self._scaled(raw), float(y))
        self.learned += 1


def positive_weight(positives: int, negatives: int) -> float:
    """The churn loss's weight of a positive after ``positives`` and ``negatives`` labels.

    >>> positive_weight(0, 0), positive_weight(3, 15), positive_weight(15, 3), positive_weight(1, 999)
    (1.0, 2.0, 0.5, 4.0)
    """
    low, high = WEIGHT_RANGE
    return min(max(math.sqrt((negatives + 1) / (positives + 1)), low), high)


def inputs(x: Mapping[str, float], features: tuple[str, ...]) -> dict[str, float]:
    """``features`` of ``x`` as model inputs: heavy-tailed ones log1p (negatives read as 0).

    >>> inputs({"days_since_last": math.e - 1, "cart_rate": 0.25, "orders": 3.0}, ("days_since_last", "cart_rate"))
    {'days_since_last': 1.0, 'cart_rate': 0.25}
    """
    out = {f: math.log1p(max(x[f], 0.0)) if f in HEAVY_TAILED else float(x[f]) for f in features}
    if not all(map(math.isfinite, out.values())):
        raise ValueError(f"feature values must be finite: {x}")
    return out


def _clip(z: dict[str, float]) -> dict[str, float]:
    return {f: v if -Z_CLIP <= v <= Z_CLIP else math.copysign(Z_CLIP, v) for f, v in z.items()}
