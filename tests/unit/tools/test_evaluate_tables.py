"""The tables ``streamproc evaluate`` prints for its result."""

from __future__ import annotations

from rich.console import Console

from streamproc.models.training import LearnerState
from streamproc.tools.evaluate import Evaluation, render


def test_evaluate_tables_show_about_twelve_rows_and_the_final_figures() -> None:
    row = {"labels": 1200, "churn_auc": 0.8123, "recency_auc": None, "palive_auc": None,
           "satisfaction_mae": 0.25, "mean_baseline_mae": 0.3}
    ev = Evaluation(timeline=[{**row, "at": f"2026-01-{d:02}T00:00:00+00:00"} for d in range(1, 25)],
                    figures=LearnerState().figures(), events=10)
    console = Console(record=True, width=100)
    console.print(render(ev))
    text = console.export_text()
    dates = [line.split()[1] for line in text.splitlines() if line.startswith("│ 2026-")]
    assert dates == [f"2026-01-{d:02}" for d in range(2, 25, 2)]
    assert "│ 2026-01-24 │  1,200 │     0.812 │       - │        - │    0.250 │    0.300 │" in text
    assert "final: 0 churn labels matured (0 churned), 0 ratings" in text
    assert "running mean -" in text
