"""A Faust agent that does nothing: the framework's own ceiling, measured by ``streamproc bench``.

It consumes the same input topics in its own consumer group, counts records and, when the
target count is reached, writes the wall-clock times of the first and last record to a file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import faust
import orjson

from streamproc.contracts import load_contracts
from streamproc.runtime.app import create_app
from streamproc.settings import Settings


def attach_noop(app: faust.App, topics: list[str], target: int, out: Path) -> None:
    channel = app.topic(*topics, value_type=bytes, value_serializer="raw", key_type=bytes, key_serializer="raw")

    @app.agent(channel, name="noop")
    async def noop(stream: faust.StreamT) -> None:
        first, n = 0.0, 0
        async for _ in stream:
            n += 1
            if n == 1:
                first = time.time()
            if n == target:
                out.write_bytes(orjson.dumps({"events": n, "first_at": first, "last_at": time.time()}))


def run_noop(settings: Settings, target: int, out: Path) -> None:
    """Run the do-nothing worker until stopped (the bench stops it once ``out`` exists)."""
    contracts = load_contracts(settings.topics_dir)
    app = create_app(settings.model_copy(update={"app_id": f"{settings.app_id}-noop"}))
    attach_noop(app, [t.name for t in contracts.inputs], target, out)
    sys.argv = ["streamproc", "worker", "--loglevel", settings.log_level]
    app.main()
