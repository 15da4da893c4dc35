"""A population fit at T sees every customer as of T, however far each partition ran past T.

The same generated history is applied three ways: only the events up to T (the population as
of T, nothing after it), then everything in one batch, then everything in batches of uneven
sizes with the watermark sweeping between them (partitions drained at other speeds). The last
two leave rows for T as they move customers past it (``features.population``); the fit
(``runtime.refit._fit``, the function the fit process runs) must find the same parameters,
population values and cluster model in all three.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from streamproc.decisions.rules import Population
from streamproc.features.population import FitGrid
from streamproc.pipeline import BatchResult, apply_batch, sweep
from streamproc.runtime.refit import Fitted, _fit
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig
from streamproc.state import codec
from streamproc.tools.earlywarning import decoded_events
from tests.builders import RULES

CONFIG = GeneratorConfig(customers=150, days=50, seed=3)
GRID = FitGrid(timedelta(days=7), None)


@pytest.fixture(scope="module")
def events() -> list:
    return decoded_events(CONFIG, Settings())


def fit(profiles: dict, rows: list, at) -> Fitted:
    kept: dict[bytes, bytes] = {}
    for t, r in rows:  # the store keeps the first row left for a customer and a fit time
        if t == at:
            kept.setdefault(r.customer_id.encode(), codec.dumps(r))
    return _fit([codec.dumps(p) for p in profiles.values()], kept, None, 3, at, 5, 90.0, RULES.sessions)


def uneven(events: list, seed: int) -> tuple[dict, list]:
    """All events in batches of random sizes, each followed by a sweep to its newest event."""
    rng, profiles, rows, i = random.Random(seed), {}, [], 0
    while i < len(events):
        n = rng.choice((1, 7, 50, 400, 3000))
        batch = events[i:i + n]
        i += n
        result: BatchResult = apply_batch(batch, profiles, Population(), RULES, grid=GRID)
        profiles |= result.profiles
        rows += result.rows
        now = batch[-1].ts
        swept = sweep(profiles, dict.fromkeys(profiles, now), Population(), RULES, GRID)
        profiles |= swept.profiles
        rows += swept.rows
    return profiles, rows


def test_a_fit_sees_the_population_as_of_its_time_however_far_partitions_ran(events: list) -> None:
    at = GRID.at_or_after(events[0].ts + timedelta(days=35))
    as_of = apply_batch([e for e in events if e.ts <= at], {}, Population(), RULES)
    reference = fit(as_of.profiles, [], at)
    whole = apply_batch(events, {}, Population(), RULES, grid=GRID)
    assert any(t == at for t, _ in whole.rows)
    assert fit(whole.profiles, whole.rows, at) == reference
    for seed in (1, 2):
        profiles, rows = uneven(events, seed)
        assert fit(profiles, rows, at) == reference
    assert reference.params is not None and reference.customers == len(as_of.profiles)


def test_without_the_rows_a_fit_would_see_the_customers_as_they_are_now(events: list) -> None:
    at = GRID.at_or_after(events[0].ts + timedelta(days=35))
    whole = apply_batch(events, {}, Population(), RULES, grid=GRID)
    assert fit(whole.profiles, [], at) != fit(whole.profiles, whole.rows, at)
