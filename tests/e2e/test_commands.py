"""The commands a newcomer runs first: ``dev`` stops everything on Ctrl-C; ``demo`` streams,
summarises and leaves nothing running; ``bench`` reports medians, spreads, ratio and load; ``demo`` and
``bench`` leave no files where they were started.

"Everything" is what the command started: the brokers, redis-servers and workers whose parent
chain leads to it (``StackWatch``), whatever else runs on the machine.
"""

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

STACK = ("tansu", "redis-server", "streamproc worker", "streamproc bench-noop")
Key = tuple[int, int]
"""A process as (pid, start time in clock ticks since boot): a reused pid is another process."""


def proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state, start time) of every process on this machine, from /proc/<pid>/stat."""
    table = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                raw = (d / "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ", which may hold spaces
            table[int(d.name)] = (int(fields[1]), fields[0], int(fields[19]))
    return table


def descendants(root: int, table: dict[int, tuple[int, str, int]]) -> set[int]:
    """Every pid whose parent chain leads to ``root`` (new sessions keep their parent)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class StackWatch:
    """The brokers, redis-servers and workers descended from one command, as seen while it runs.

    Other stacks on the machine (other tests, other users) are never counted. A process is
    recorded while its parent chain still leads to the command, so one orphaned later on is
    still known and ``alive`` still reports it.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[Key, str] = {}

    def look(self) -> dict[Key, str]:
        """Record the stack processes descended from the command now; those running now."""
        table = proc_table()
        now = {}
        for pid in descendants(self.root, table):
            cmd = cmdline(pid)
            if table[pid][1] != "Z" and any(s in cmd for s in STACK):
                now[(pid, table[pid][2])] = cmd
        self.seen |= now
        return now

    def alive(self) -> dict[Key, str]:
        """The recorded processes still running (same pid and start time, not a zombie)."""
        table = proc_table()
        return {k: cmd for k, cmd in self.seen.items()
                if k[0] in table and table[k[0]][2] == k[1] and table[k[0]][1] != "Z"}

    def until_exit(self, proc: subprocess.Popen[bytes], timeout_s: float) -> int:
        """Record the stack while ``proc`` runs; its exit status."""
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{proc.args} still running after {timeout_s:.0f}s")
            self.look()
            time.sleep(0.1)
        return proc.returncode


def streamproc(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamproc", *args]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMPROC_")}


def test_dev_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen(streamproc("dev"), stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    watch = StackWatch(dev.pid)
    try:
        wait_for(lambda: b"Worker]: Ready" in log.read_bytes(), 90, "the dev worker")
        started = watch.look()
        assert len(started) == 3, started  # broker, redis, worker
        dev.send_signal(signal.SIGINT)
        assert watch.until_exit(dev, 60) == 0, log.read_text()[-2000:]
    finally:
        dev.kill()
    time.sleep(0.5)
    assert watch.alive() == {}


def test_demo_summarises_and_leaves_nothing_running(tmp_path: Path) -> None:
    out, err, cwd = tmp_path / "demo.out", tmp_path / "demo.err", tmp_path / "cwd"
    cwd.mkdir()
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        demo = subprocess.Popen(streamproc("demo", "--events", "4000", "--json"), stdout=stdout, stderr=stderr,
                                env=clean_env(), cwd=cwd)
    watch = StackWatch(demo.pid)
    assert watch.until_exit(demo, 300) == 0, err.read_text()[-3000:]
    summary = orjson.loads(out.read_text().strip().splitlines()[-1])
    assert summary["events"] == 4000
    assert summary["profiles"] > 0 and summary["segment_changes"] > 0
    assert {"alerts", "dead_lettered", "seconds"} <= summary.keys()
    sample = summary["sample_profile"]
    assert sample["events"] >= 1 and sample["stage"]
    assert len(watch.seen) >= 3, watch.seen  # it did start a broker, a redis-server and a worker
    time.sleep(0.5)
    assert watch.alive() == {}
    assert list(cwd.iterdir()) == []  # no Faust data directory where it was started


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


def test_bench_backfill_applies_the_whole_history_and_profiles_the_worker(tmp_path: Path) -> None:
    """A small history (150 customers, 60 days): every event's fate decided, the rate overall and
    by tenth, the outputs, and a py-spy profile naming the pipeline; nothing left running."""
    work, profile, out, err = tmp_path / "cwd", tmp_path / "spy.txt", tmp_path / "out", tmp_path / "err"
    work.mkdir()
    with out.open("wb") as o, err.open("wb") as e:
        bench = subprocess.Popen(streamproc("bench", "--backfill", "--customers", "150", "--days", "60",
                                            "--cadence", "1", "--profile", str(profile), "--json"),
                                 stdout=o, stderr=e, env=clean_env(), cwd=work)
        watch = StackWatch(bench.pid)
        assert watch.until_exit(bench, 400) == 0, err.read_text()[-3000:]
    r = orjson.loads(out.read_text().strip().splitlines()[-1])
    assert r["customers"] == 150 and r["days"] == 60 and r["events"] > 1000 and r["events_per_s"] > 0
    assert len(r["by_tenth"]) == 10 and r["outputs"]["segment_changes"] > 0
    prof = r["profile_summary"]
    assert prof["samples"] > 0 and profile.stat().st_size > 0
    assert any("streamproc/" in name for name, _ in prof["total_pct"])
    assert watch.alive() == {}
    assert list(work.iterdir()) == []


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


def test_demo_crm_closes_the_loop_and_the_uplift_finds_the_effect(tmp_path: Path) -> None:
    run = subprocess.run(streamproc("demo", "--crm", "--json"), capture_output=True, env=clean_env(), cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    crm = orjson.loads(run.stdout.decode().strip().splitlines()[-1])["crm"]
    assert crm["webhooks_received"] > 50 and crm["verified"] == crm["webhooks_received"]
    assert crm["comeback_purchases"] > 10
    (v,) = crm["uplift"]["versions"]
    assert min(v["treated"]["customers"], v["held_out"]["customers"]) >= 30
    assert v["ci95"][0] > 0 and v["verdict"].startswith("effect"), v
    assert list(tmp_path.iterdir()) == []
