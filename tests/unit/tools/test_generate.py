"""``streamproc generate`` to a file: one JSON line per record sent, clean or dirtied."""

from __future__ import annotations

import io

import orjson

from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.tools.generate import event_pairs, write_jsonl

SMALL = GeneratorConfig(customers=5, days=5, seed=3)


def written(dirty: bool) -> list[bytes]:
    out = io.BytesIO()
    write_jsonl(SMALL, dirty, out)
    return out.getvalue().splitlines()


def test_clean_lines_are_the_generated_events_in_order() -> None:
    assert [orjson.loads(line) for line in written(dirty=False)] == list(generate(SMALL))


def test_dirty_lines_are_the_dirtied_records_one_per_line() -> None:
    sent = [raw.replace(b"\n", b" ") for _, raw in event_pairs(generate(SMALL), SMALL.seed, dirty=True)]
    assert written(dirty=True) == sent
    assert len(sent) > sum(1 for _ in generate(SMALL))  # the injected duplicates
