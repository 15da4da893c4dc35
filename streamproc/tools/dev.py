"""``streamproc dev``: broker + Redis (unless configured) + topics + one worker, until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from streamproc.contracts import load_contracts
from streamproc.runtime.admin import create_topics
from streamproc.settings import Settings
from streamproc.tools.stack import Stack, scratch_dir, start_stack, start_worker, stop_process

log = logging.getLogger(__name__)


def prepare(settings: Settings, workdir: Path) -> Stack:
    """Start what is missing of the stack and create the topics."""
    stack = start_stack(settings.kafka_url, settings.redis_url, workdir)
    try:
        created = asyncio.run(create_topics(stack.kafka_url, load_contracts(settings.topics_dir)))
        log.info("topics created: %s", ", ".join(created) or "none (all existed)")
    except BaseException:
        stack.stop()
        raise
    return stack


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_dev(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop the worker and everything started here."""
    with scratch_dir("streamproc-dev-") as workdir, prepare(settings, workdir) as stack:
        print(f"STREAMPROC_KAFKA_URL={stack.kafka_url}\nSTREAMPROC_REDIS_URL={stack.redis_url}", flush=True)
        worker = start_worker(stack.env(), None)
        # both stop it, even when started from a shell that ignores SIGINT in background jobs
        # (Python then leaves SIGINT ignored instead of raising KeyboardInterrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        try:
            worker.wait()
            log.error("worker exited with code %s", worker.returncode)
        except KeyboardInterrupt:
            log.info("stopping worker, broker and redis")
        finally:
            stop_process(worker)
