"""``streamproc models`` as text: the lines ``model_lines`` makes of the document ``read_models`` returns."""

from __future__ import annotations

from typing import Any

from streamproc.models.training import LearnerState
from streamproc.ops.models import model_lines


def doc(figures: dict[str, Any] | None = None, ltv: dict[str, float] | None = None) -> dict[str, Any]:
    return {"online": {"version": 3 if figures else 0, "figures": figures},
            "population": {"version": 2 if ltv else 0, "fitted_at": "2026-03-01T00:00:00+00:00" if ltv else None,
                           "ltv": ltv, "customers": 1500 if ltv else 0}}


def test_before_anything_is_learned_or_fitted_two_lines_say_so() -> None:
    assert model_lines(doc()) == ["online models: version 0 (nothing learned yet)",
                                  "population fit: version 0 (not fitted yet)"]


def test_figures_and_parameters_get_a_line_each_and_missing_metrics_a_dash() -> None:
    figures = LearnerState().figures()
    figures["churn"].update(learned=12345, labels=2345, positives=345, auc=0.81234)
    figures["satisfaction"].update(learned=4321, mae=0.6543)
    ltv = {"r": 0.5, "alpha": 10.1234, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "v": 15.5}
    assert model_lines(doc(figures, ltv)) == [
        "online models: version 3",
        ("  churn        learned 12,345; labels 2,345 (345 churned); AUC 0.812 (last 0: -); log loss -; ECE -; "
         "recency AUC -; P(alive) AUC -; drifts 0"),
        ("  churn served: recency since label 0 (served score AUC -); rolling AUCs : served first: the model "
         "replaces it once it ranks recent labels clearly better"),
        "  satisfaction learned 4,321; MAE 0.654 (last 0: -); RMSE -; R2 -; running-mean MAE -; drifts 0",
        "population fit: version 2, at event time 2026-03-01T00:00:00+00:00 on 1,500 customers",
        "  BG/NBD r=0.500 alpha=10.123 a=0.800 b=2.500; Gamma-Gamma p=6.000 q=4.000 v=15.500",
    ]
