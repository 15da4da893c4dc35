"""The ``streamproc`` command line. Each command is a thin shell over a module of its own."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from streamproc.errors import StreamprocError
from streamproc.settings import get_settings


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
    from streamproc.worker import run_worker

    run_worker(get_settings(), ctx.args)


@cli.command()
def dev() -> None:
    """Start a broker and Redis (unless configured), create the topics and run one worker.

    Prints the URLs to export for other commands. Ctrl-C stops everything it started.
    """
    from streamproc.dev import run_dev

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


def main() -> None:
    """Entry point of the console script."""
    try:
        cli(standalone_mode=True)
    except StreamprocError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
