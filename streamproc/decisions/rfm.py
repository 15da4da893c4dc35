"""RFM scores from population quantiles, with hysteresis, and the named segments they map to.

In: a customer's recency (time of last purchase), frequency (number of orders) and monetary
value (total spend), the population's ``Bounds`` for each, and the customer's current scores.
Out: scores 1-5 (5 best) and a named segment. Pure: the bounds are read from Redis by the
store (exact quantiles of the live population, from sorted sets).

A score is 1 plus the number of cut points (the 20th, 40th, 60th and 80th percentiles)
the value is above. Hysteresis: a customer moves up past a cut only when above the value
at ``cut + margin``, and down only when at or below the value at ``cut - margin`` (margin
in quantile points, ``STREAMPROC_SEGMENT_MARGIN``), so customers near a boundary do not
flap between two scores on every event.

Segments from the R and F scores (M is reported with them):

==================== ===================== ==================================================
segment              R, F                  who
==================== ===================== ==================================================
Champions            R 4-5, F 4-5          bought recently and often
Loyal                R 3 and F 3-5;        buy regularly
                     R 4-5 and F 3
Potential loyalist   R 3-5, F 2            recent, second order placed
New                  R 3-5, F 1            recent first order
At risk              R 1-2, F 3-4          used to buy regularly, not lately
Can't lose them      R 1-2, F 5            among the most frequent, gone quiet
Hibernating          R 2, F 1-2            few orders, a while ago
Lost                 R 1, F 1-2            few orders, long ago
==================== ===================== ==================================================

>>> segment(5, 5), segment(1, 5), segment(2, 1), segment(4, 1)
('Champions', "Can't lose them", 'Hibernating', 'New')
"""

from __future__ import annotations

from dataclasses import dataclass

RFM_CUTS = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True, slots=True)
class Bounds:
    """A population's values at each cut point, and at the cut point less / plus the margin."""

    cuts: tuple[float, ...]
    low: tuple[float, ...]
    mid: tuple[float, ...]
    high: tuple[float, ...]
    size: int

    def quantiles(self, margin: float) -> list[float]:
        """Every quantile the store reads, in the order ``from_values`` expects."""
        return [q for c in self.cuts for q in (max(c - margin, 0.0), c, min(c + margin, 1.0))]

    @classmethod
    def from_values(cls, cuts: tuple[float, ...], values: list[float], size: int) -> Bounds:
        return cls(cuts, tuple(values[0::3]), tuple(values[1::3]), tuple(values[2::3]), size)


def score(value: float, b: Bounds, current: int | None) -> int:
    """1 + the number of cut points ``value`` is above, with hysteresis around ``current``.

    >>> b = Bounds((0.5,), low=(9.0,), mid=(10.0,), high=(11.0,), size=100)
    >>> score(10.5, b, None), score(10.5, b, 1), score(10.5, b, 2), score(8.0, b, 2)
    (2, 1, 2, 1)
    """
    s = 1
    for k, mid in enumerate(b.mid):
        if current is None:
            above = value > mid
        elif current > k + 1:
            above = value > b.low[k]
        else:
            above = value > b.high[k]
        if not above:
            break
        s += 1
    return s


def segment(r: int, f: int) -> str:
    """The named segment of R and F scores (table in the module docstring)."""
    if r <= 2:
        if f == 5:
            return "Can't lose them"
        if f >= 3:
            return "At risk"
        return "Hibernating" if r == 2 else "Lost"
    if f == 1:
        return "New"
    if f == 2:
        return "Potential loyalist"
    if r >= 4 and f >= 4:
        return "Champions"
    return "Loyal"


def why(dim: str, old: int | None, new: int, value: str, bound: str) -> str:
    """A reason a person can read, for example ``F 2->3: 4 orders, above the 40th percentile (3)``."""
    arrow = f"{old}->{new}" if old is not None else f"{new}"
    return f"{dim} {arrow}: {value}, {'above' if old is None or new > old else 'at or below'} {bound}"
