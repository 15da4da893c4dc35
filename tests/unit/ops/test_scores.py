"""Score freshness: a quiet customer's stored score ages, the score a read serves does not."""

from __future__ import annotations

from streamproc.decisions.rules import Population
from streamproc.ops.scores import freshness
from streamproc.pipeline import apply_batch
from tests.builders import RULES, at, buy, click


def test_stored_scores_age_with_quiet_customers_and_reads_are_as_of_the_read() -> None:
    events = [click("e1", 0), buy("e2", 1, customer="c2"), click("e3", 30, customer="c3")]
    profiles = apply_batch(events, {}, Population(), RULES).profiles
    got = freshness(profiles, at(40), Population(), RULES)
    assert got.customers == 3
    assert got.churn_read == {"scored": 3, "unscored": 0, "q0": 0.0, "q50": 0.0, "q90": 0.0, "q99": 0.0, "q100": 0.0}
    assert got.churn_sources == {"recency": 3}
    assert got.churn_stored == {"scored": 0, "unscored": 3}  # no online model yet: nothing stored, reads serve recency
    assert got.value_stored["scored"] == 0 and got.value_read["scored"] == 0  # no lifetime-value fit yet
    assert "3 customers" in got.lines()[0]
