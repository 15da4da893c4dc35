"""The text ``streamproc early-warning`` prints for its report."""

from __future__ import annotations

from streamproc.tools.earlywarning import Report


def test_early_warning_lines_give_shares_and_leads() -> None:
    report = Report(drifting=7, flagged_before_last=1, median_lead_days=1.8, lead_p25_days=None, lead_p75_days=None,
                    flagged_after_last=2, never_flagged=4, first_reasons={"overdue": 2}, others=33,
                    others_flagged_while_active=4, others_reasons={"overdue": 4})
    assert report.lines() == [
        "drifting customers who stop: 7",
        "  at_risk before their last event: 1 (14%), median lead 1.8 days (quartiles None - None)",
        "  at_risk only after it: 2; never: 4",
        "  first flag by reason: {'overdue': 2}",
        "customers who stay: 33; flagged at_risk while still active: 4 (by reason: {'overdue': 4})",
    ]
