"""One replay, start to end: read the file, order its events, publish them, summarise.

In: ``ReplayOptions`` (the file, its format, a mapping file, whether a dry run), the input
contracts, the broker's address and a ``Display``. Out: ``read_events``, the file's records in
event-time order, counted in a ``Summary``; ``run_replay``, those records published (unless a
dry run) and the ``Summary`` of what was read, published and could not be used. A file that
cannot be read (its encoding, a broken CSV or gzip stream) raises a ``ReplayError`` that says
how to fix it.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from streamproc.contracts import Contracts
from streamproc.tools.replay.exceptions import ReplayError
from streamproc.tools.replay.files import detect_format, jsonl_objects, native_csv, open_source
from streamproc.tools.replay.mapping import load_mapping
from streamproc.tools.replay.order import Out, Router, order_events
from streamproc.tools.replay.publish import publish_ordered
from streamproc.tools.replay.report import Display, Summary
from streamproc.tools.replay.shop import mapped_events, mapped_rows


@dataclass(frozen=True)
class ReplayOptions:
    path: Path
    format: str | None = None
    mapping: Path | None = None
    dry_run: bool = False


def read_events(opts: ReplayOptions, fmt: str, contracts: Contracts, summary: Summary, display: Display) -> list[Out]:
    """Parse the file (through the mapping, if any) and return its records in event-time order."""
    mapping = load_mapping(opts.mapping, contracts) if opts.mapping else None
    with open_source(opts.path, display.reading) as src:
        try:
            if mapping is not None:
                events = mapped_events(mapped_rows(src, fmt, mapping, summary.skipped), mapping, contracts,
                                       summary.skipped)
            else:
                events = native_csv(src, contracts) if fmt == "csv" else jsonl_objects(src, summary.skipped)
            records = order_events(events, Router(contracts), summary.skipped, summary.warnings)
        except UnicodeDecodeError as exc:
            raise ReplayError(f"{opts.path} is not {exc.encoding} text: set 'encoding' in a mapping file "
                              "(e.g. encoding = \"latin-1\"), or convert the file to UTF-8") from exc
        except (csv.Error, EOFError, gzip.BadGzipFile) as exc:
            raise ReplayError(f"{opts.path} cannot be read after row {src.rows:,}: {exc}") from exc
    summary.rows, summary.events = src.rows, len(records)
    summary.by_topic = {t.name: 0 for t in contracts.inputs} | dict(Counter(r[1] for r in records))
    return records


def run_replay(opts: ReplayOptions, contracts: Contracts, kafka_url: str, display: Display) -> Summary:
    """Read, order and (unless a dry run) publish the file; the summary of what happened."""
    fmt = detect_format(opts.path, opts.format)
    summary = Summary(str(opts.path), fmt, str(opts.mapping) if opts.mapping else None, opts.dry_run)
    started = time.perf_counter()
    records = read_events(opts, fmt, contracts, summary, display)
    if not opts.dry_run and records:
        display.publishing(0, len(records))
        summary.published = asyncio.run(publish_ordered(
            kafka_url, records, lambda n: display.publishing(n, len(records))))
    summary.seconds = time.perf_counter() - started
    return summary
