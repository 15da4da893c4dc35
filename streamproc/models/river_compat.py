"""Every use streamproc makes of River's internals, in one place.

The churn model starts with the recency prior's weight at 1 (``models.online``), and River's
linear models have no public way to set one weight: ``weights`` is a copy. ``set_weight``
writes it into the model's own store.

What this relies on, for the River version pinned in ``pyproject.toml`` (0.26);
``tests/unit/models/test_river_compat.py`` checks each item:

* ``LinearRegression`` and ``LogisticRegression`` keep their weights in ``_weights``, a mapping
  that takes item assignment and survives pickling;
* ``predict_one`` / ``predict_proba_one`` and ``learn_one`` read it, and ``weights`` reports it.
"""

from __future__ import annotations

from river import linear_model

LinearModel = linear_model.LinearRegression | linear_model.LogisticRegression


def set_weight(model: LinearModel, feature: str, value: float) -> None:
    """Set ``model``'s weight of ``feature`` to ``value``, as if it had learned it.

    >>> m = linear_model.LogisticRegression(intercept_init=0.0)
    >>> set_weight(m, "prior", 1.0)
    >>> m.weights
    {'prior': 1.0}
    """
    model._weights[feature] = value
