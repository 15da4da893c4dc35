"""``streamproc generate``: the simulator's events written to a file or published to the input topics.

In: a ``GeneratorConfig`` (customers, days, seed) and whether to dirty the records
(``sim/dirty.py``: resent duplicates, malformed and invalid records, correctable values, from
the same seed). Out: JSON Lines, one record a line as a producer would send it; CSV with one
column per event field, what ``streamproc replay`` reads (clean events only: dirty records
are not all JSON); or the records published to the input topics, keyed by customer, behind a
progress bar, and their count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from streamproc.contracts import Contracts
from streamproc.sim.dirty import dirty as make_dirty
from streamproc.sim.generator import GeneratorConfig, generate


def out_format(out: str, fmt: str | None) -> str:
    """The format asked for; without one, ``csv`` for a file name ending in .csv, else ``jsonl``.

    >>> out_format("h.CSV", None), out_format("-", None), out_format("h.csv", "jsonl")
    ('csv', 'jsonl', 'jsonl')
    """
    return fmt or ("csv" if out.lower().endswith(".csv") else "jsonl")


def event_pairs(events: Iterable[dict[str, Any]], seed: int, dirty: bool) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Each event with the bytes to send for it: its JSON, or with ``dirty`` what ``sim/dirty.py``
    makes of it from ``seed`` (plus the duplicates it injects)."""
    return make_dirty(events, seed) if dirty else ((e, orjson.dumps(e)) for e in events)


def write_jsonl(config: GeneratorConfig, dirty: bool, out: IO[bytes]) -> None:
    """The records as JSON Lines: a newline inside a (dirty) record becomes a space."""
    for _, raw in event_pairs(generate(config), config.seed, dirty):
        out.write(raw.replace(b"\n", b" ") + b"\n")


def write_csv(config: GeneratorConfig, out: IO[bytes], contracts: Contracts) -> None:
    """The clean events as native CSV (``tools/replay``'s format)."""
    from streamproc.tools.replay import write_native_csv

    write_native_csv(generate(config), out, contracts)


def publish_events(config: GeneratorConfig, dirty: bool, kafka_url: str, contracts: Contracts) -> int:
    """Publish the records to the input topics with a progress bar on the terminal; the count sent."""
    from rich.progress import Progress

    from streamproc.ops.produce import publish, raw_records

    sent = raw_records(contracts, event_pairs(generate(config), config.seed, dirty))
    with Progress(transient=False) as progress:
        task = progress.add_task("publishing", total=None)
        return asyncio.run(publish(kafka_url, sent, on_sent=lambda k: progress.update(task, completed=k)))
