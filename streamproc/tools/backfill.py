"""``streamproc bench --backfill``: how fast the worker applies a long history of many customers.

A backfill is the load that timers make heavy: months of event time pass through the
worker in minutes, so every session end, inactivity change, rescoring and churn label of
every customer comes due on the way. The live bench (``tools/bench.py``) dates its backlog
to end now and measures steady traffic; this one measures the history.

One run, on a broker and a Redis of its own:

1. the generator's history (``--customers``, ``--days``, ``--cadence``, ``--seed``) is
   published to the input topics as a replay would, in event-time order, keyed by customer;
2. one worker starts and applies it; its ``sp:stats`` counters are read every few seconds,
   so the report gives the rate overall (events over the time from the first batch to the
   last, from Redis) and for each tenth of the history, which shows whether the rate falls
   as event time and customers accumulate;
3. with ``--profile FILE``, py-spy samples the worker and its processing process for the
   whole run and writes the collapsed stacks to FILE; the report lists the functions where
   the samples fall, by their own time and with what they call (``summarise_profile``).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streamproc.contracts import load_contracts
from streamproc.errors import ConfigError, StackError
from streamproc.ops.produce import event_records, publish
from streamproc.ops.stats import StatsReader
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.tools.bench import LoadSampler, Reporter
from streamproc.tools.dev import prepare
from streamproc.tools.stack import scratch_dir, start_worker, stop_process

PACKAGE_FRAME = "streamproc/"
OUTPUTS = ("segment_changes", "alerts", "examples", "dead_lettered", "duplicates")


@dataclass(frozen=True)
class BackfillOptions:
    customers: int = 20000
    days: int = 183
    cadence: float = 0.25
    seed: int = 7
    timeout_s: float = 3600.0
    sample_s: float = 5.0
    profile: Path | None = None


def run_backfill(settings: Settings, opts: BackfillOptions, report: Reporter) -> dict[str, Any]:
    """Publish the history, let one worker apply it, and report its rates (see the module docstring)."""
    if settings.kafka_url or settings.redis_url:
        raise ConfigError("bench --backfill starts a fresh broker and Redis: "
                          "unset STREAMPROC_KAFKA_URL and STREAMPROC_REDIS_URL")
    spy_bin = _py_spy() if opts.profile is not None else None
    if opts.profile is not None and spy_bin is None:
        raise ConfigError("--profile needs py-spy: scripts/setup installs it into .venv with the dev extra "
                          "(or pip install py-spy)")
    config = GeneratorConfig(opts.customers, opts.days, opts.seed, cadence=opts.cadence)
    contracts = load_contracts(settings.topics_dir)
    with LoadSampler() as load, scratch_dir("streamproc-backfill-") as workdir, prepare(settings, workdir) as stack:
        report.step(f"publishing {opts.customers:,} customers over {opts.days} days")
        started = time.monotonic()
        n = asyncio.run(publish(stack.kafka_url, event_records(contracts, generate(config))))
        published_s = time.monotonic() - started
        report.note(f"published {n:,} events in {published_s:.0f} s")
        report.step(f"the worker applying {n:,} events")
        worker = start_worker(stack.env(), workdir / "worker.log")
        spy = _profiler(spy_bin, worker.pid, opts.profile) if spy_bin and opts.profile else None
        try:
            samples = _follow(StatsReader(stack.redis_url), n, worker, opts, report)
        finally:
            if spy is not None:
                _stop_profiler(spy)
            stop_process(worker)
    return summary(samples, n, opts, published_s, load.summary())


def _py_spy() -> str | None:
    """py-spy beside this Python (a virtualenv's bin), else on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _profiler(spy_bin: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` and its children as collapsed stacks into ``out`` until stopped."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy_bin, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                             "--rate", "50", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_profiler(spy: subprocess.Popen[bytes]) -> None:
    """py-spy writes its file when interrupted."""
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def _follow(reader: StatsReader, n: int, worker: subprocess.Popen[bytes], opts: BackfillOptions,
            report: Reporter) -> list[tuple[float, dict[str, float]]]:
    """The worker's counters every ``sample_s`` seconds until it decided the fate of ``n`` records."""
    deadline = time.monotonic() + opts.timeout_s
    samples: list[tuple[float, dict[str, float]]] = []
    last_note = 0.0
    while True:
        totals = reader.snapshot(0)
        counters, done = totals.counters, totals.processed
        samples.append((done, counters))
        if done >= n:
            return samples
        if worker.poll() is not None:
            raise StackError(f"the worker exited with code {worker.returncode} after {done:,} of {n:,} events")
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {opts.timeout_s:.0f} s with {done:,} of {n:,} events applied")
        if time.monotonic() - last_note >= 60 and "first_at" in counters:
            rate = done / max(counters["last_at"] - counters["first_at"], 1e-9)
            report.note(f"{done:,} of {n:,} events, {rate:,.0f} events/s so far")
            last_note = time.monotonic()
        time.sleep(opts.sample_s)


def summary(samples: list[tuple[float, dict[str, float]]], n: int, opts: BackfillOptions, published_s: float,
            load: dict[str, Any]) -> dict[str, Any]:
    """The report: overall events/s, events/s by tenth of the history, outputs, load."""
    final = samples[-1][1]
    elapsed = max(final["last_at"] - final["first_at"], 1e-9)
    return {
        "customers": opts.customers, "days": opts.days, "cadence": opts.cadence, "seed": opts.seed,
        "events": n, "published_s": round(published_s, 1), "apply_s": round(elapsed, 1),
        "events_per_s": round(n / elapsed, 1), "by_tenth": by_tenth(samples, n),
        "outputs": {k: int(final.get(k, 0)) for k in OUTPUTS}, "load_average": load,
        "profile": str(opts.profile) if opts.profile else None,
    }


def by_tenth(samples: list[tuple[float, dict[str, float]]], n: int) -> list[float | None]:
    """Events/s over each tenth of the events, from the samples that bracket it (``None`` where
    no two samples fall around it: the tenth went by within one sampling interval).

    >>> s = [(10 * k, {"last_at": float(k if k <= 5 else 2 * k - 5)}) for k in range(11)]
    >>> by_tenth(s, 100)
    [10.0, 10.0, 10.0, 10.0, 10.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    >>> by_tenth(s[::5], 100)[:2]
    [None, None]
    """
    out: list[float | None] = []
    points = [(done, c["last_at"]) for done, c in samples if "last_at" in c]
    for k in range(10):
        lo, hi = n * k / 10, n * (k + 1) / 10
        before = [p for p in points if p[0] <= lo]
        after = [p for p in points if p[0] >= hi]
        if not before or not after or after[0][1] <= before[-1][1] or after[0][0] - before[-1][0] > 2 * (hi - lo):
            out.append(None)
            continue
        (d0, t0), (d1, t1) = before[-1], after[0]
        out.append(round((d1 - d0) / (t1 - t0), 1))
    return out


def summarise_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """The functions where py-spy's samples fall, from its collapsed stacks (``path``): each
    line is ``frame;frame;...;frame count``, a frame ``function (file:line)``. ``self`` counts the
    samples whose innermost frame is the function, any function; ``total`` those with the
    function anywhere on the stack, once a sample, for streamproc's own functions only (what
    the event path spends, with what it calls); both as shares of all samples of every
    process recorded, the ``top`` largest each."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        samples += k
        own[frames[-1]] += k
        for f in set(frames):
            if f.startswith(PACKAGE_FRAME, f.find(" (") + 2):
                total[f] += k
    share = lambda c: [(name, round(100 * v / max(samples, 1), 1)) for name, v in c.most_common(top)]  # noqa: E731
    return {"samples": samples, "self_pct": share(own), "total_pct": share(total)}


def _frame(frame: str) -> str:
    """``apply_batch (streamproc/pipeline.py:160)`` -> ``apply_batch (streamproc/pipeline.py)``;
    a path inside site-packages keeps only the part after it.

    >>> _frame("apply_batch (/w/streamproc/pipeline.py:160)")
    'apply_batch (streamproc/pipeline.py)'
    >>> _frame("execute (/v/lib/python3.11/site-packages/redis/asyncio/client.py:12)")
    'execute (redis/asyncio/client.py)'
    """
    name, found, where = frame.partition(" (")
    if not found:
        return frame  # py-spy's "process <pid>:<command line>" root
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    for marker in ("site-packages/", "/streamproc/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            path = "streamproc/" + path if marker == "/streamproc/" else path
            break
    return f"{name} ({path})"


def print_backfill(console: Console, r: dict[str, Any]) -> None:
    """The report as a few lines, and the profile's top functions when there is one."""
    console.print(f"{r['events']:,} events of {r['customers']:,} customers over {r['days']} days "
                  f"(cadence {r['cadence']:g}, seed {r['seed']}), published in {r['published_s']:.0f} s")
    console.print(f"worker: [bold]{r['events_per_s']:,.0f} events/s[/bold] ({r['apply_s']:,.0f} s)")
    tenths = " ".join("-" if x is None else f"{x:,.0f}" for x in r["by_tenth"])
    console.print(f"events/s by tenth of the history: {tenths}")
    console.print("outputs: " + ", ".join(f"{k} {v:,}" for k, v in r["outputs"].items()))
    load = r["load_average"]
    console.print(f"load average (1 min): start {load['start']}, max {load['max']}, end {load['end']} "
                  f"on {load['cpus']} CPUs (idle: near 0)")
    prof = r.get("profile_summary")
    if not prof:
        return
    for key, title in (("self_pct", "own time"), ("total_pct", "with what it calls")):
        table = Table(title=f"where the samples fall ({title}), {prof['samples']:,} samples in {r['profile']}")
        table.add_column("function")
        table.add_column("%", justify="right")
        for name, pct in prof[key]:
            table.add_row(name, f"{pct:.1f}")
        console.print(table)
