"""Prequential evaluation of the online models, and drift alarms on their errors.

In:  one matured label at a time with the score that was *served* for it (predict, then
     wait for the label, then score, then learn): for churn the label (1 churned), the
     model's P(churn) and the named baselines' scores of the same snapshot; for
     satisfaction the actual and the predicted satisfaction, both 0-1.
Out: ``snapshot()``, every figure as a JSON-ready dict (for Redis and ``streamproc models``),
     over the whole stream and over the last ``window`` labels; a ``Drift`` from ``update``
     when the model's error has risen; the whole state as bytes (``dumps`` / ``loads``) to
     checkpoint with the learner's offsets.

Churn figures (``ChurnMetrics``):

* ROC AUC from a histogram of ``BINS`` = 1,000 equal bins of score per class: pairs in
  different bins are ordered exactly and a positive and a negative in the same bin count as
  half a pair, as tied scores do. The AUC is thus the exact AUC of the scores rounded down
  to 0.001; it differs from the exact one by at most half the share of positive-negative
  pairs that share a bin. The same AUC is kept for each named baseline, on exactly the
  same labels, since every ``update`` must give every baseline. Baseline scores are in
  [0, 1] too, higher meaning more likely to churn: ``1 - p_alive``, or a recency in days as
  ``days / (days + horizon_days)`` (AUC ignores any monotone rescaling, and this one keeps
  the bins fine where most customers are).
* Log loss, with the score clipped to [1e-15, 1 - 1e-15].
* Calibration by deciles of the score (equal counts, not equal widths): each decile's mean
  score, observed churn rate and count, and the expected calibration error (ECE), the
  count-weighted mean gap between the two. Deciles are runs of whole histogram bins (a bin
  belongs to the decile of its first label), so their counts are about a tenth of the
  labels, and fewer than ten appear when many scores fall in one bin.

Satisfaction figures (``SatisfactionMetrics``): MAE, RMSE and R2, and the MAE of the mean
baseline, which predicts the running mean of the labels before each one (0.5 for the first).

Drift: ADWIN (``river.drift.ADWIN``) watches each model's absolute error, |y - p| for churn
and |y - y_hat| for satisfaction, both within [0, 1] as ADWIN's bound assumes. When ADWIN
cuts its window, the mean error of the part dropped (``mean_before``) and of the part kept
(``mean_after``) are reported as a ``Drift`` if the error rose. A fall, which is how an
online model's learning curve looks, also cuts the window but raises no alarm.
``DELTA`` is 0.01, not river's 0.002: the models relearn a changed relation within a few
hundred labels, so the rise in error is brief. When the churn relation reversed at label
2,000 of 4,000, ADWIN noticed it after 80-112 labels in 10 of 10 seeds at 0.01 (9 of 10 at
0.002), and on 500,000 labels with a steady error it cut its window not once at 0.01.
A change the model relearns within about 100 labels is not reported at all: satisfaction
falling by 0.3 for everyone, or the text's effect on it reversing, raised no alarm in 10
of 10 seeds, while ratings turning noisier did. The alarm is for lasting degradation of
the model; a fall in satisfaction itself shows in the profiles, not here.

Cost (a shared 2-core machine): ``update`` about 7 µs for churn with two baselines and 3 µs
for satisfaction, counting in lists plus ADWIN (under 1 µs); the histograms are only summed
up in ``snapshot``, 1.5-2 ms. With a full window of 1,000 labels ``dumps`` gives about 64 kB
for churn with two baselines (whole-stream histograms and the window) and 31 kB for
satisfaction, about 2 ms with ``loads``: a checkpoint per batch, never per label.
``loads`` must only be given bytes that ``dumps`` wrote.

>>> metrics = ChurnMetrics(baselines=("recency",), window=4)
>>> for y, p, r in [(1, 0.9, 0.6), (0, 0.2, 0.7), (1, 0.7, 0.4), (0, 0.4, 0.1), (0, 0.8, 0.5)]:
...     _ = metrics.update(y, p, {"recency": r})
>>> figures = metrics.snapshot()
>>> figures["labels"], figures["positives"], figures["auc"], figures["baselines"]["recency"]["auc"]
(5, 2, 0.8333333333333334, 0.5)
>>> figures["rolling"]["labels"], figures["rolling"]["auc"]
(4, 0.6666666666666666)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from river import drift

from streamproc.models.pickled import Pickled

BINS = 1000
WINDOW = 1000
DELTA = 0.01
"""ADWIN's confidence parameter: lower raises fewer, later alarms (see the module docstring)."""
EPS = 1e-15

Figures = dict[str, Any]
Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Drift:
    """The error of ``model`` rose from ``mean_before`` to ``mean_after``, detected at its ``at_count``-th label."""

    model: str
    at_count: int
    mean_before: float
    mean_after: float


class DriftWatch:
    """ADWIN over one model's error stream, values in [0, 1]; reports rises only."""

    def __init__(self, model: str, delta: float = DELTA) -> None:
        self.model = model
        self.detections = 0
        self.last: Drift | None = None
        self._adwin = drift.ADWIN(delta=delta)

    def update(self, error: float, count: int) -> Drift | None:
        """Add one error (the ``count``-th); the ``Drift`` if ADWIN finds that the error rose."""
        adwin = self._adwin
        width, total = adwin.width, adwin.total
        adwin.update(error)
        if not adwin.drift_detected:
            return None
        dropped = width + 1 - adwin.width
        before = (total + error - adwin.total) / dropped
        if adwin.estimation <= before:
            return None
        self.detections += 1
        self.last = Drift(self.model, count, before, adwin.estimation)
        return self.last

    def figures(self) -> Figures:
        return {"detections": self.detections, "last": asdict(self.last) if self.last else None}


class ChurnMetrics(Pickled):
    """AUC, log loss and calibration of churn scores, with baselines' AUC; see the module docstring."""

    def __init__(self, baselines: tuple[str, ...] = (), window: int = WINDOW, delta: float = DELTA) -> None:
        self.baselines = tuple(baselines)
        self.labels = 0
        self.positives = 0
        self._log_loss = 0.0
        # (negatives, positives) per score bin: the model's, then each baseline's
        self._counts = [([0] * BINS, [0] * BINS) for _ in range(1 + len(self.baselines))]
        self._sums = [0.0] * BINS  # the model's scores per bin
        self._recent: deque[tuple[float, ...]] = deque(maxlen=window)  # y, log loss, model score, baseline scores
        self._watch = DriftWatch("churn", delta)

    def update(self, y: int, p: float, baselines: Mapping[str, float] | None = None) -> Drift | None:
        """Score one matured label ``y`` (1 churned) against the served P(churn) ``p`` and baseline scores."""
        given = baselines or {}
        if given.keys() != set(self.baselines):
            raise ValueError(f"need scores for exactly the baselines {self.baselines}, got {tuple(given)}")
        scores = (p, *(given[name] for name in self.baselines))
        bins = [_bin(score) for score in scores]  # validates every score before anything changes
        churned = 1 if y else 0
        for (neg, pos), b in zip(self._counts, bins):
            (pos if churned else neg)[b] += 1
        self._sums[bins[0]] += p
        loss = _log_loss(churned, p)
        self.labels += 1
        self.positives += churned
        self._log_loss += loss
        self._recent.append((churned, loss, *scores))
        return self._watch.update(abs(churned - p), self.labels)

    def rolling_aucs(self) -> tuple[int, int, dict[str, float | None]]:
        """Labels and positives among the last ``window`` labels, and the ROC AUC on them of the
        model's score (``"model"``) and of each baseline's: ``snapshot``'s rolling AUCs, for less."""
        rows = np.array(self._recent, dtype=float).reshape(-1, 3 + len(self.baselines))
        y = rows[:, 0]
        names = ("model", *self.baselines)
        aucs = {name: auc(*_class_counts(y, _binned(rows[:, 2 + i]))) for i, name in enumerate(names)}
        return len(rows), int(y.sum()), aucs

    def snapshot(self) -> Figures:
        """Every figure, whole stream and ``rolling`` (the last ``window`` labels), JSON-ready."""
        whole = [(np.array(neg, dtype=float), np.array(pos, dtype=float)) for neg, pos in self._counts]
        rows = np.array(self._recent, dtype=float).reshape(-1, 3 + len(self.baselines))
        y, loss, p = rows[:, 0], rows[:, 1], rows[:, 2]
        recent = [_class_counts(y, _binned(rows[:, 2 + i])) for i in range(len(whole))]
        sums = np.bincount(_binned(p), weights=p, minlength=BINS).astype(float)
        rolling = _churn_figures(recent, sums, float(loss.sum()), self.baselines)
        return (_churn_figures(whole, np.array(self._sums), self._log_loss, self.baselines)
                | {"rolling": rolling, "drift": self._watch.figures()})


class SatisfactionMetrics(Pickled):
    """MAE, RMSE and R2 of satisfaction predictions, with the mean baseline's MAE; see the module docstring."""

    def __init__(self, window: int = WINDOW, delta: float = DELTA) -> None:
        self.labels = 0
        self._sums: tuple[float, ...] = (0.0,) * 5  # |error|, error^2, y, y^2, |mean baseline's error|
        self._recent: deque[tuple[float, float, float]] = deque(maxlen=window)  # y, y_hat, mean baseline
        self._watch = DriftWatch("satisfaction", delta)

    def update(self, y: float, y_hat: float) -> Drift | None:
        """Score one actual satisfaction ``y`` against the served prediction ``y_hat``, both 0-1."""
        if not (0.0 <= y <= 1.0 and 0.0 <= y_hat <= 1.0):
            raise ValueError(f"satisfaction and its prediction must be within [0, 1], got {y}, {y_hat}")
        y, y_hat = float(y), float(y_hat)
        mean = self._sums[2] / self.labels if self.labels else 0.5
        self._sums = _plus(self._sums, _terms(y, y_hat, mean))
        self.labels += 1
        self._recent.append((y, y_hat, mean))
        return self._watch.update(abs(y - y_hat), self.labels)

    def snapshot(self) -> Figures:
        """Every figure, whole stream and ``rolling`` (the last ``window`` labels), JSON-ready."""
        recent: tuple[float, ...] = (0.0,) * 5
        for row in self._recent:
            recent = _plus(recent, _terms(*row))
        return (_satisfaction_figures(self._sums, self.labels)
                | {"rolling": _satisfaction_figures(recent, len(self._recent)), "drift": self._watch.figures()})


def _terms(y: float, y_hat: float, mean: float) -> tuple[float, ...]:
    error = y - y_hat
    return abs(error), error * error, y, y * y, abs(y - mean)


def _plus(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(u + v for u, v in zip(a, b))


def _bin(score: float) -> int:
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"scores must be within [0, 1], got {score}")
    return min(int(score * BINS), BINS - 1)


def _binned(scores: Array) -> NDArray[np.intp]:
    """``_bin`` of many scores at once (already checked by ``update``)."""
    return np.minimum((scores * BINS).astype(np.intp), BINS - 1)


def _class_counts(y: Array, bins: NDArray[np.intp]) -> tuple[Array, Array]:
    """Negatives and positives per bin."""
    pos = np.bincount(bins, weights=y, minlength=BINS).astype(float)
    return np.bincount(bins, minlength=BINS) - pos, pos


def _log_loss(y: int, p: float) -> float:
    p = min(max(p, EPS), 1.0 - EPS)
    return -math.log(p if y else 1.0 - p)


def auc(neg: Array, pos: Array) -> float | None:
    """ROC AUC from per-bin counts of negatives and positives (same-bin pairs count half); None for one class.

    >>> round(auc(np.array([2.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0])), 4)  # 8.5 of 9 pairs
    0.9444
    """
    n_neg, n_pos = neg.sum(), pos.sum()
    if not n_neg or not n_pos:
        return None
    below = np.cumsum(neg) - neg
    return float(pos @ (below + neg / 2) / (n_neg * n_pos))


def calibration(neg: Array, pos: Array, sums: Array) -> list[dict[str, float]]:
    """Per decile of score: mean score, observed rate and count (see the module docstring).

    >>> calibration(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0]), np.array([0.1, 0.8, 0.9]))
    [{'mean_predicted': 0.1, 'observed': 0.0, 'count': 1}, {'mean_predicted': 0.4, 'observed': 0.5, 'count': 2}, \
{'mean_predicted': 0.9, 'observed': 1.0, 'count': 1}]
    """
    counts = neg + pos
    total = counts.sum()
    used = counts > 0
    first = np.cumsum(counts) - counts
    decile = np.minimum((10 * first[used] // total).astype(int), 9)
    n, p, s = (np.bincount(decile, weights=a[used], minlength=10) for a in (counts, pos, sums))
    return [{"mean_predicted": float(s[d] / n[d]), "observed": float(p[d] / n[d]), "count": int(n[d])}
            for d in range(10) if n[d]]


def _ece(deciles: list[dict[str, float]], labels: int) -> float:
    return sum(d["count"] * abs(d["mean_predicted"] - d["observed"]) for d in deciles) / labels


def _churn_figures(counts: list[tuple[Array, Array]], sums: Array, log_loss: float,
                   baselines: tuple[str, ...]) -> Figures:
    """Figures from per-bin counts (the model's first, then each baseline's) and the model's per-bin score sums."""
    neg, pos = counts[0]
    labels = int(neg.sum() + pos.sum())
    deciles = calibration(neg, pos, sums) if labels else []
    return {
        "labels": labels,
        "positives": int(pos.sum()),
        "auc": auc(neg, pos),
        "log_loss": log_loss / labels if labels else None,
        "ece": _ece(deciles, labels) if labels else None,
        "calibration": deciles,
        "baselines": {name: {"auc": auc(*c)} for name, c in zip(baselines, counts[1:])},
    }


def _satisfaction_figures(sums: tuple[float, ...], labels: int) -> Figures:
    if not labels:
        return {"labels": 0, "mae": None, "rmse": None, "r2": None, "mean_baseline_mae": None}
    abs_err, sq_err, y, y2, base = sums
    spread = y2 - y * y / labels
    return {
        "labels": labels,
        "mae": abs_err / labels,
        "rmse": math.sqrt(sq_err / labels),
        "r2": 1.0 - sq_err / spread if spread > 1e-12 else None,
        "mean_baseline_mae": base / labels,
    }
