"""The commands a newcomer runs first: ``dev`` stops everything on Ctrl-C; ``demo`` streams,
summarises and leaves nothing running; ``bench`` reports medians, spreads, ratio and load; ``demo`` and
``bench`` leave no files where they were started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.live import wait_for

pytestmark = pytest.mark.e2e
STACK = ("tansu", "redis-server", "streamproc worker", "streamproc bench-noop")


def stack_processes() -> dict[int, str]:
    """pid -> command line of every broker, redis-server and worker on this machine."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (d / "stat").read_text().split()[2]
            except OSError:
                continue
            if state != "Z" and any(s in cmd for s in STACK):
                out[int(d.name)] = cmd
    return out


def streamproc(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamproc", *args]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMPROC_")}


def test_dev_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    before = set(stack_processes())
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen(streamproc("dev"), stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    try:
        wait_for(lambda: b"Worker]: Ready" in log.read_bytes(), 90, "the dev worker")
        started = set(stack_processes()) - before
        assert len(started) == 3, started  # broker, redis, worker
        dev.send_signal(signal.SIGINT)
        assert dev.wait(60) == 0, log.read_text()[-2000:]
    finally:
        dev.kill()
    time.sleep(0.5)
    assert set(stack_processes()) & started == set()


def test_demo_summarises_and_leaves_nothing_running(tmp_path: Path) -> None:
    before = set(stack_processes())
    run = subprocess.run(streamproc("demo", "--events", "4000", "--json"), capture_output=True, env=clean_env(),
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    summary = orjson.loads(run.stdout.decode().strip().splitlines()[-1])
    assert summary["events"] == 4000
    assert summary["profiles"] > 0 and summary["segment_changes"] > 0
    assert {"alerts", "dead_lettered", "seconds"} <= summary.keys()
    sample = summary["sample_profile"]
    assert sample["events"] >= 1 and sample["stage"]
    time.sleep(0.5)
    assert set(stack_processes()) - before == set()
    assert list(tmp_path.iterdir()) == []  # no Faust data directory where it was started


def test_bench_reports_medians_spreads_ratio_and_load_and_leaves_its_directory_empty(tmp_path: Path) -> None:
    run = subprocess.run(streamproc("bench", "--events", "600", "--latency-events", "50", "--repeat", "2", "--json"),
                         capture_output=True, env=clean_env(), cwd=tmp_path, timeout=400)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    result = orjson.loads(run.stdout.decode().strip().splitlines()[-1])
    assert result["events"] == 600 and result["repeat"] == 2 and result["latency_events"] == 50
    for side in ("worker_events_per_s", "noop_events_per_s"):
        s = result[side]
        assert len(s["runs"]) == 2 and all(r > 0 for r in s["runs"])
        assert s["min"] == min(s["runs"]) and s["max"] == max(s["runs"]) and s["min"] <= s["median"] <= s["max"]
    medians = result["worker_events_per_s"]["median"] / result["noop_events_per_s"]["median"]
    assert result["ratio"] == pytest.approx(medians, rel=0.01)
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    load = result["load_average"]
    assert 0 <= load["start"] <= load["max"] and load["end"] <= load["max"] and load["samples"] >= 2
    assert list(tmp_path.iterdir()) == []  # no Faust data directory where it was started


def test_bench_refuses_a_configured_broker_and_redis() -> None:
    env = {**clean_env(), "STREAMPROC_KAFKA_URL": "kafka://127.0.0.1:1"}
    run = subprocess.run(streamproc("bench", "--events", "10"), capture_output=True, env=env, timeout=60)
    assert run.returncode == 2 and b"STREAMPROC_KAFKA_URL" in run.stderr


def test_evaluate_prints_the_table_saves_the_plot_and_ends_with_json(tmp_path: Path) -> None:
    plot = tmp_path / "eval.png"
    run = subprocess.run(streamproc("evaluate", "--customers", "80", "--days", "120", "--plot", str(plot), "--json"),
                         capture_output=True, env=clean_env(), timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    lines = run.stdout.decode().strip().splitlines()
    result = orjson.loads(lines[-1])
    assert {"churn_auc", "recency_auc", "palive_auc", "satisfaction_mae", "mean_baseline_mae",
            "labels_matured"} <= result.keys()
    assert result["labels_matured"] > 500 and result["satisfaction_labels"] > 100
    assert result["satisfaction_mae"] < result["mean_baseline_mae"]
    assert any("churn ROC AUC" in line for line in lines)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
