"""Held-out churn evaluation: every score read at the cut, against inactivity after it."""

from __future__ import annotations

import pytest

from streamproc.models.serving import CANDIDATES
from streamproc.sim.generator import GeneratorConfig
from streamproc.tools.evaluate import generated_events
from streamproc.tools.holdout import SCORES, auc, holdout
from tests.builders import SETTINGS


def test_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert auc([0.2, 0.2, 0.9], [0, 1, 1]) == 0.75
    assert auc([0.1, 0.2], [1, 1]) is None


def test_every_customer_known_at_the_cut_is_scored_against_what_followed() -> None:
    events = generated_events(GeneratorConfig(customers=60, days=120, seed=5), SETTINGS)
    report = holdout(events, SETTINGS, holdout_days=30, step_days=2)
    known = {e.customer_id for e in events if e.ts.isoformat() <= report.cut}
    back = {e.customer_id for e in events if e.ts.isoformat() > report.cut}
    assert report.customers == len(known) and report.churned == len(known - back)
    assert report.served in CANDIDATES
    assert set(report.aucs) == set(SCORES)
    assert all(v is None or 0.0 <= v <= 1.0 for v in report.aucs.values())
    assert report.aucs["recency"] is not None and report.aucs["recency"] > 0.6
    assert report.lines()[0].startswith("held out: 30 days after ")


def test_a_cut_before_the_first_event_is_refused() -> None:
    events = generated_events(GeneratorConfig(customers=5, days=10, seed=5), SETTINGS)
    with pytest.raises(ValueError, match="hold out fewer than"):
        holdout(events, SETTINGS, holdout_days=400)
