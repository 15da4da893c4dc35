"""``streamproc demo``: dev stack + generator + worker, a live view, and a summary.

In: options (events, generator seed and shape). Out: the summary dict (also printed, or as
JSON on the last line of stdout with ``--json``). Everything started is stopped on exit.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.pretty import Pretty
from rich.table import Table

from streamproc.contracts import Contracts, load_contracts
from streamproc.errors import StackError
from streamproc.ops.produce import ProducerRecord, publish, raw_records
from streamproc.ops.stats import StatsReader, Totals
from streamproc.settings import Settings
from streamproc.sim.generator import GeneratorConfig, generate
from streamproc.tools import uplift
from streamproc.tools.crmloop import RULE, Loop, key_map
from streamproc.tools.dev import prepare
from streamproc.tools.generate import event_pairs
from streamproc.tools.stack import Stack, free_port, scratch_dir, start_worker, stop_process


@dataclass(frozen=True)
class DemoOptions:
    events: int = 20000
    days: int = 120
    seed: int = 7
    customers: int | None = None
    timeout_s: float = 600.0
    dirty: bool = False
    crm: bool = False
    crm_effect: float = 0.5
    crm_window_days: float = 3.0


def with_dashboard_token(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """``env`` with one more API token, ``demo-dashboard`` (aggregates:read, profiles:read), made for
    this run only and never written anywhere; the token itself, for the dashboard's URL."""
    token = secrets.token_urlsafe(18)
    entry = {"name": "demo-dashboard", "sha256": hashlib.sha256(token.encode()).hexdigest(),
             "scopes": ["aggregates:read", "profiles:read"]}
    tokens = orjson.loads(env.get("STREAMPROC_API_TOKENS") or "[]") + [entry]
    return {**env, "STREAMPROC_API_TOKENS": orjson.dumps(tokens).decode()}, token


def customers_for(events: int, days: int, seed: int) -> int:
    """How many simulated customers yield about ``events`` events over ``days``."""
    sample = 40
    n = sum(1 for _ in generate(GeneratorConfig(customers=sample, days=days, seed=seed)))
    return max(10, math.ceil(events * sample / max(n, 1) * 1.05))


def first_events(events: int, days: int, seed: int, customers: int | None = None) -> Iterator[dict[str, Any]]:
    """The first ``events`` generated events, from enough customers to span about ``days``."""
    n = customers or customers_for(events, days, seed)
    return itertools.islice(generate(GeneratorConfig(customers=n, days=days, seed=seed)), events)


def demo_records(opts: DemoOptions, contracts: Contracts) -> tuple[list[ProducerRecord], str]:
    """``opts.events`` input records (dirtied with ``--dirty``) and one customer id among them."""
    events = first_events(opts.events, opts.days, opts.seed, opts.customers)
    pairs = event_pairs(events, opts.seed, opts.dirty)
    chosen = list(itertools.islice(pairs, opts.events))
    return list(raw_records(contracts, chosen)), chosen[-1][0]["customer_id"]


class Publisher(threading.Thread):
    """Publishes the demo's events in the background; ``sent`` and ``error`` for the view."""

    def __init__(self, kafka_url: str, records: list[tuple[str, bytes | None, bytes]]) -> None:
        super().__init__(daemon=True)
        self.kafka_url, self.records = kafka_url, records
        self.sent, self.error = 0, None

    def run(self) -> None:
        try:
            asyncio.run(publish(self.kafka_url, self.records, on_sent=self._progress))
        except Exception as exc:  # shown by the live view, which then stops the demo
            self.error = exc

    def _progress(self, n: int) -> None:
        self.sent = n


def view(snap: Totals, prev: Totals, dt: float, sent: int, total: int) -> Group:
    """The live terminal view: rates per topic, customers, segments, latest alerts."""
    topics = Table(title=f"events: {snap.processed:,} processed of {total:,} ({sent:,} published)")
    for col in ("topic", "events", "events/s"):
        topics.add_column(col, justify="right" if col != "topic" else "left")
    for name, n in sorted(snap.by_topic.items()):
        topics.add_row(name, f"{n:,}", f"{(n - prev.by_topic.get(name, 0)) / max(dt, 1e-9):,.0f}")
    topics.add_row("dead-lettered", f"{snap.count('dead_lettered'):,}", "")
    segs = Table(title=f"customers: {snap.profiles:,}")
    segs.add_column("lifecycle stage")
    segs.add_column("customers", justify="right")
    for stage, n in sorted(snap.lifecycle.items(), key=lambda kv: -kv[1]):
        segs.add_row(stage, f"{n:,}")
    alerts = Table(title=f"alerts: {snap.count('alerts'):,} (latest)")
    for col in ("event time", "customer", "rule", "message"):
        alerts.add_column(col)
    for a in snap.alerts:
        alerts.add_row(str(a["ts"])[:16], str(a["customer_id"])[:12] + "…", str(a["rule"]), str(a["message"]))
    return Group(topics, segs, alerts)


def summary(snap: Totals, seconds: float, sample: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "events": snap.processed, "profiles": snap.profiles,
        "segment_changes": snap.count("segment_changes"), "alerts": snap.count("alerts"),
        "dead_lettered": snap.count("dead_lettered"), "dead_letter_reasons": snap.dead_letter_reasons,
        "duplicates": snap.count("duplicates"), "corrections": snap.by_prefix("fix"), "late": snap.by_prefix("late"), "by_topic": snap.by_topic, "lifecycle": snap.lifecycle,
        "seconds": round(seconds, 2), "sample_profile": sample,
    }


def print_summary(console: Console, result: dict[str, Any]) -> None:
    """The summary under a rule, as a pretty-printed dict."""
    console.rule("summary")
    console.print(Pretty(result))


def watch(stack: Stack, worker: Any, pub: Publisher, total: int, opts: DemoOptions, console: Console) -> Totals:
    """Refresh the view until ``total`` events are processed; raise if something died."""
    reader = StatsReader(stack.redis_url)
    prev, t_prev, deadline = reader.snapshot(), time.monotonic(), time.monotonic() + opts.timeout_s
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            time.sleep(0.5)
            snap, now = reader.snapshot(), time.monotonic()
            live.update(view(snap, prev, now - t_prev, pub.sent, total))
            if snap.processed >= total:
                return snap
            if worker.poll() is not None:
                raise StackError(f"the worker exited with code {worker.returncode}; see {stack.workdir / 'worker.log'}")
            if pub.error is not None:
                raise StackError(f"publishing failed: {pub.error}")
            if now > deadline:
                raise StackError(f"only {snap.processed} of {total} events processed in {opts.timeout_s:.0f}s")
            prev, t_prev = snap, now


def sample_profile(stack: Stack, settings: Settings, raw_id: str) -> dict[str, Any] | None:
    """The stored profile of the customer ``raw_id``, read back from Redis under its key."""
    p = StatsReader(stack.redis_url, settings.key_prefix).profile(settings.pseudonymiser().customer(raw_id))
    return None if p is None else {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                   for k, v in asdict(p).items() if k != "seen"}


def run_demo(settings: Settings, opts: DemoOptions, console: Console,
             linger: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the demo; ``linger(result)``, if given, runs before anything is stopped (``--stay``)."""
    contracts = load_contracts(settings.topics_dir)
    records, sample_id = demo_records(opts, contracts)
    started = time.monotonic()
    with scratch_dir("streamproc-demo-") as workdir, prepare(settings, workdir) as stack:
        loop = Loop(stack.kafka_url, contracts, key_map(records, settings), opts.crm_effect).start() if opts.crm else None
        env, token = with_dashboard_token({**stack.env(), **(loop.env(workdir) if loop else {})})
        port = free_port()
        worker = start_worker(env, workdir / "worker.log", port)
        dashboard = f"http://127.0.0.1:{port}/dashboard/?token={token}"
        console.print(f"dashboard (while the demo runs): {dashboard}", soft_wrap=True, highlight=False)
        console.print(f"worker log: {workdir / 'worker.log'}" if loop else "")
        try:
            pub = Publisher(stack.kafka_url, records)
            pub.start()
            snap = watch(stack, worker, pub, len(records), opts, console)
            result = summary(snap, time.monotonic() - started, sample_profile(stack, settings, sample_id))
            if loop is not None:
                result["crm"] = close_loop(loop, stack, settings, contracts, len(records), opts, console)
            result["dashboard"] = dashboard
            if linger is not None:
                linger(result)
            return result
        finally:
            stop_process(worker)
            if loop is not None:
                loop.stop()


def close_loop(loop: Loop, stack: Stack, settings: Settings, contracts: Contracts, total: int, opts: DemoOptions,
               console: Console) -> dict[str, Any]:
    """Wait for the last webhooks and comebacks, then judge the measured rule (``streamproc uplift``)."""
    with console.status("waiting for the last webhooks and the customers they bring back"):
        loop.wait_quiet()
        reader = StatsReader(stack.redis_url)
        deadline = time.monotonic() + 60
        while reader.snapshot().processed < total + loop.published and time.monotonic() < deadline:
            time.sleep(0.5)
    live = settings.model_copy(update={"kafka_url": stack.kafka_url, "redis_url": stack.redis_url})
    alerts, purchases = asyncio.run(uplift.read(live, contracts))
    report = uplift.report(alerts, purchases, RULE, timedelta(days=opts.crm_window_days))
    console.rule(f"streamproc uplift --rule {RULE} --window {opts.crm_window_days:g}d")
    console.print("\n".join(uplift.lines(report)), highlight=False)
    return loop.figures() | {"uplift": report}
