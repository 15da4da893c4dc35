"""The learner's state: both online models and their prequential metrics, learned from examples.

In: training examples, as published on the training-examples topic (``Example``). Out: the
models after learning each example once, the prequential metrics of each churn candidate's
own score on them (the model's prediction, the recency and P(alive) baselines'), of the
score that was *served* (``served``), and of the satisfaction predictions (predict, wait
for the label, score, then learn); the candidate to serve (``serving``, ``models.serving``),
set on the churn model that is published; and a ``Drift`` when a model's error rises. Pure: the runtime learner (``runtime/learner.py``) checkpoints the whole state
with the offset of the last example it learned, and ``streamproc evaluate`` drives the same
state in process.

>>> from datetime import datetime, timezone
>>> from streamproc.features.vector import FEATURES
>>> state = LearnerState()
>>> t = datetime(2026, 1, 1, tzinfo=timezone.utc).isoformat()
>>> x = dict.fromkeys(FEATURES, 0.0) | {"text_sentiment": 0.8}
>>> ex = Example("e1", "satisfaction", "c1", t, t, x, 1.0, None, None, {})
>>> state.learn(ex) is None, state.satisfaction.learned, state.sat_metrics.labels
(True, 1, 1)
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any, Self

from streamproc.models.metrics import ChurnMetrics, Drift, SatisfactionMetrics
from streamproc.models.online import ChurnModel, SatisfactionModel
from streamproc.models.pickled import Pickled
from streamproc.models.serving import DECIDE_EVERY, Serving, Window, choose
from streamproc.records import Example

BASELINES = ("recency", "palive")
SERVED = "served"
"""The served score's name among the churn metrics' named scores (not a baseline: ``figures`` moves it out)."""
REMEMBER = 20_000
FORMAT = 3
"""Bumped whenever a model's or the state's layout changes: ``loads`` refuses another format."""


class IncompatibleState(ValueError):
    """A learner state written by a streamproc whose models are laid out differently."""


class LearnerState(Pickled):
    """Both models and their metrics; ``learn`` each example once, in the order of the topic.

    The same example can be published twice (a worker that crashed after publishing but
    before writing its state publishes it again, with the same id); the ids of the last
    ``remember`` examples are kept, as 64-bit digests so the state written after every
    batch stays small, and an id seen among them is skipped (``duplicates``).
    ``horizon_days`` is the churn label horizon, which the churn model's prior reads.
    """

    def __init__(self, remember: int = REMEMBER, horizon_days: float = 30.0) -> None:
        self.format = FORMAT
        self.churn = ChurnModel(horizon_days=horizon_days)
        self.satisfaction = SatisfactionModel()
        self.churn_metrics = ChurnMetrics(baselines=(*BASELINES, SERVED))
        self.serving = Serving()
        self.sat_metrics = SatisfactionMetrics()
        self.duplicates = 0
        self._recent: deque[int] = deque(maxlen=remember)
        self._seen: set[int] = set()

    def _first_time(self, event_id: str) -> bool:
        digest = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")
        if digest in self._seen:
            self.duplicates += 1
            return False
        if len(self._recent) == self._recent.maxlen:
            self._seen.discard(self._recent[0])
        self._recent.append(digest)
        self._seen.add(digest)
        return True

    def learn(self, ex: Example) -> Drift | None:
        """Score each candidate's own prediction against the label, then learn; the model's
        prediction now stands in for its score when none was made (before the first model)."""
        if not self._first_time(ex.event_id):
            return None
        if ex.model == "churn":
            return self._learn_churn(ex)
        if ex.model == "satisfaction":
            y_hat = ex.score if ex.score is not None else self.satisfaction.predict(ex.features)
            drift = self.sat_metrics.update(float(ex.label), y_hat)
            self.satisfaction.learn(ex.features, float(ex.label))
            return drift
        raise ValueError(f"unknown model {ex.model!r} in training example {ex.event_id}")

    def _learn_churn(self, ex: Example) -> Drift | None:
        own = ex.score if ex.score is not None else self.churn.predict(ex.features)
        scores = {k: ex.baselines.get(k, 0.0) for k in BASELINES}
        served = scores.get(ex.served or "model", own)
        drift = self.churn_metrics.update(int(ex.label), own, scores | {SERVED: served})
        self.churn.learn(ex.features, int(ex.label))
        if self.churn.learned % DECIDE_EVERY == 0:
            self.serving = choose(self.serving, Window(*self.churn_metrics.rolling_aucs()), self.churn.learned)
            self.churn.served = self.serving.candidate
        return drift

    def figures(self) -> dict[str, Any]:
        """Versions, example counts and every metric, JSON-ready."""
        return {
            "duplicates": self.duplicates,
            "churn": _churn_figures(self.churn, self.churn_metrics.snapshot(), self.serving),
            "satisfaction": {"version": self.satisfaction.version, "learned": self.satisfaction.learned,
                             **self.sat_metrics.snapshot()},
        }

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_seen"}  # rebuilt from _recent

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._seen = set(self._recent)

    @classmethod
    def loads(cls, data: bytes) -> Self:
        """The state ``dumps`` wrote; ``IncompatibleState`` if another layout's, or another version's
        whose classes this streamproc does not have."""
        try:
            state = super().loads(data)
        except TypeError as exc:
            raise IncompatibleState(str(exc)) from exc
        if getattr(state, "format", 1) != FORMAT:
            raise IncompatibleState(f"learner state of format {getattr(state, 'format', 1)}; "
                                    f"this streamproc reads format {FORMAT}")
        return state


def _churn_figures(model: ChurnModel, metrics: dict[str, Any], serving: Serving) -> dict[str, Any]:
    """The churn metrics with the served score's AUCs moved from the baselines to ``served``,
    next to the candidate served and why."""
    auc = metrics["baselines"].pop(SERVED)["auc"]
    rolling = metrics["rolling"]["baselines"].pop(SERVED)["auc"]
    served = serving.figures() | {"auc": auc, "rolling_auc": rolling}
    return {"version": model.version, "learned": model.learned, "positive_weight": model.weight,
            **metrics, "served": served}
