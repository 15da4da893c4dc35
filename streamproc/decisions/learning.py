"""Per-customer side of the online models: served scores, snapshots, and the examples they become.

In: a profile, its feature vector as of an event time, and the models the worker holds
(``Population.churn`` / ``Population.satisfaction``, ``None`` before the first version).
Out: the profile with its churn score (its source, reasons and model version), predicted
satisfaction and pending snapshots; and ``Example`` records for the training-examples topic.

* Each rescoring (``decisions.segments``) serves the churn score of the candidate the learner
  chose (``ChurnModel.served``, ``models.serving``): the model's P(churn) or one of two
  baselines, the recency rule, ``days / (days + horizon)`` of inactivity, and the BG/NBD
  probability of being dead, ``1 - P(alive)`` (0 without a purchase or a fit). At most once
  per ``snapshot_every_days`` it takes a snapshot of the churn model's inputs with the
  model's own score, the baselines' scores and the name of the candidate served, so each
  candidate is evaluated on its own score. The snapshot waits in the profile until
  its label matures (``features.labels``): churned when the horizon passes without activity,
  retained at the next activity before that. A matured snapshot leaves the profile in the
  same transaction that publishes its example, so it becomes one example, once.
* Each rating or NPS becomes a satisfaction example at once: the profile's features *before*
  the feedback, plus the VADER sentiment of its text, and the satisfaction it gave. A feedback
  with text only gets the model's estimate from the same inputs, kept in the profile
  (``unrated_feedback``), and no example: the model never learns from a label it made up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streamproc.decisions.rules import Population, Rules
from streamproc.features.vector import vector
from streamproc.frozen import replace
from streamproc.models import ltv
from streamproc.models.online import CHURN_FEATURES, TEXT_SENTIMENT, ChurnModel
from streamproc.records import Example, Feedback, output_id
from streamproc.state import labels, purchases
from streamproc.state.profile import ChurnScore, Profile, SatisfactionEstimate


def baselines(v: dict[str, float], p: Profile, horizon: timedelta, p_alive: float | None = None) -> dict[str, float]:
    """The baselines' churn scores from feature vector ``v``: ``recency`` and ``palive`` (1 - P(alive));
    P(alive) is ``p_alive`` when given, else the profile's value as of its last rescoring."""
    days = v["days_since_last"]
    alive = p_alive if p_alive is not None else p.value.p_alive if p.value is not None else None
    dead = 1.0 - alive if alive is not None else 0.0
    return {"recency": days / (days + horizon.total_seconds() / 86400), "palive": min(max(dead, 0.0), 1.0)}


def churn_as_of(p: Profile, now: datetime, pop: Population, rules: Rules) -> ChurnScore:
    """The churn score a read at event time ``now`` serves: the candidate the current model version
    serves, computed from the profile as of ``now`` (its recency, and P(alive) from the current
    lifetime-value fit), whatever the time of its last rescoring. Before the first model version
    it is the recency rule's score (version 0), the candidate served first, so no customer goes
    unscored. The profile itself is not changed: no snapshot is taken, nothing is learned."""
    at = max(now, p.last_seen)
    v = vector(p, at)
    x = {f: v[f] for f in CHURN_FEATURES}
    alive = p_alive_as_of(p, at, pop)
    base = baselines(v, p, rules.churn_label_after, alive)
    if pop.churn is None:
        reasons = (("days_since_last", round(x["days_since_last"], 4), "raises risk"),)
        return ChurnScore(round(base["recency"], 4), 0, reasons, at, "recency")
    return _served(pop.churn, x, pop.churn.predict(x), base, p, at, alive)


def p_alive_as_of(p: Profile, now: datetime, pop: Population) -> float | None:
    """BG/NBD P(alive) of the customer at event time ``now`` (not before its last purchase) under the
    current fit; None without a fit or a purchase."""
    s = purchases.summary(p.days, max(now, p.last_purchase or now)) if pop.ltv is not None else None
    return ltv.p_alive(pop.ltv, s) if s is not None else None


def _served(model: ChurnModel, x: dict[str, float], own: float, base: dict[str, float], p: Profile,
            now: datetime, p_alive: float | None = None) -> ChurnScore:
    """The churn score of the candidate ``model.served``, with its reasons (see ``ChurnScore``)."""
    source = model.served
    alive = p_alive if p_alive is not None else p.value.p_alive if p.value else None
    if source == "recency":
        reasons: tuple[tuple[str, float, str], ...] = (("days_since_last", round(x["days_since_last"], 4), "raises risk"),)
    elif source == "palive":
        reasons = (("p_alive", round(alive, 4) if alive is not None else 0.0, "lowers risk"),)
    else:
        source = "model"
        reasons = tuple((r.feature, round(r.contribution, 4), r.direction) for r in model.reasons(x))
    return ChurnScore(round(own if source == "model" else base[source], 4), model.version, reasons, now, source)


def score(p: Profile, v: dict[str, float], now: datetime, pop: Population, rules: Rules) -> Profile:
    """Serve the chosen candidate's churn score and the predicted satisfaction as of ``now``, and keep
    a snapshot (the model's own score, the baselines', the candidate served) for the label."""
    x = {f: v[f] for f in CHURN_FEATURES}
    churn, own, base = p.churn, None, baselines(v, p, rules.churn_label_after)
    if pop.churn is not None:
        own = pop.churn.predict(x)
        churn = _served(pop.churn, x, own, base, p, now)
    sat = p.predicted_satisfaction
    if pop.satisfaction is not None:
        sat = round(pop.satisfaction.predict(v | {TEXT_SENTIMENT: v["sentiment"]}), 4)
    if p.snapshot_at is not None and now - p.snapshot_at < rules.snapshot_every:
        return replace(p, churn=churn, predicted_satisfaction=sat)
    snap = labels.Snapshot.take(p.customer_id, now, x, None if own is None else round(own, 4), base,
                                churn.source if own is not None and churn is not None else None)
    pending = labels.add(p.pending, snap)
    return replace(p, churn=churn, predicted_satisfaction=sat, pending=pending,
                   snapshot_at=now if pending is not p.pending else p.snapshot_at)


def _examples(p: Profile, matured: list[labels.Matured], version: int | None) -> list[Example]:
    return [Example(
        event_id=output_id("example", "churn", m.snapshot.id), model="churn", customer_id=p.customer_id,
        ts=m.at.isoformat(), snapshot_at=m.snapshot.at.isoformat(), features=m.snapshot.features,
        label=float(m.label), score=m.snapshot.score, model_version=version, baselines=m.snapshot.baselines,
        served=m.snapshot.served,
    ) for m in matured]


def on_activity(p: Profile, ts: datetime, rules: Rules) -> tuple[Profile, list[Example]]:
    """Activity at ``ts``: pending snapshots before it mature (retained), those past the horizon churned."""
    if not p.pending:
        return p, []
    pending, matured = labels.on_activity(p.pending, ts, rules.churn_label_after)
    if pending is p.pending:
        return p, []
    return replace(p, pending=pending), _examples(p, matured, p.churn.version if p.churn else None)


def expire(p: Profile, now: datetime, rules: Rules) -> tuple[Profile, list[Example]]:
    """Snapshots whose horizon passed by ``now`` without activity mature as churned."""
    if not p.pending:
        return p, []
    pending, matured = labels.expire(p.pending, now, rules.churn_label_after)
    if not matured:
        return p, []
    return replace(p, pending=pending), _examples(p, matured, p.churn.version if p.churn else None)


def next_due(p: Profile, rules: Rules) -> datetime | None:
    return labels.next_due(p.pending, rules.churn_label_after)


def on_feedback(before: Profile, p: Profile, event: Feedback, pop: Population) -> tuple[Profile, list[Example]]:
    """The satisfaction model's part in a feedback, ``p`` being the profile after it and ``before``
    the one before: with a rating or NPS, one example (the features of ``before``, the sentiment
    of the text, the satisfaction as the label and the model's prediction as its score); with
    text only, the model's estimate from the same inputs in ``p.unrated_feedback``, and no example."""
    x = vector(before, event.ts) | {TEXT_SENTIMENT: (p.last_sentiment or 0.0) if event.text else 0.0}
    model = pop.satisfaction
    served = None if model is None else round(model.predict(x), 4)
    y = event.satisfaction
    if y is None:
        if model is None or served is None:
            return p, []
        return replace(p, unrated_feedback=SatisfactionEstimate(served, model.version, event.ts)), []
    return p, [Example(
        event_id=output_id("example", "satisfaction", event.event_id), model="satisfaction",
        customer_id=event.customer_id, ts=event.ts.isoformat(), snapshot_at=event.ts.isoformat(), features=x,
        label=y, score=served, model_version=None if model is None else model.version, baselines={},
    )]
