"""The backfill bench's profile summary over py-spy's collapsed stacks, and its rates by tenth."""

from __future__ import annotations

from pathlib import Path

from streamproc.tools.backfill import summarise_profile


def test_profile_shares_count_own_time_and_each_function_once_per_sample(tmp_path: Path) -> None:
    raw = tmp_path / "spy.txt"
    raw.write_text(
        "process 1:\"python -m streamproc worker\";run (/v/lib/python3.11/site-packages/faust/worker.py:10);"
        "apply_batch (/w/streamproc/pipeline.py:160);step (/w/streamproc/pipeline.py:110) 6\n"
        "process 1:\"python -m streamproc worker\";run (/v/lib/python3.11/site-packages/faust/worker.py:10);"
        "apply_batch (/w/streamproc/pipeline.py:170);apply_batch (/w/streamproc/pipeline.py:171) 3\n"
        "process 1:\"python -m streamproc worker\";execute (/v/lib/python3.11/site-packages/redis/client.py:5) 1\n"
        "a line that is not a stack\n"
    )
    s = summarise_profile(raw, top=3)
    assert s["samples"] == 10
    assert s["self_pct"] == [("step (streamproc/pipeline.py)", 60.0), ("apply_batch (streamproc/pipeline.py)", 30.0),
                             ("execute (redis/client.py)", 10.0)]
    total = dict(summarise_profile(raw, top=10)["total_pct"])
    assert total["apply_batch (streamproc/pipeline.py)"] == 90.0  # a recursive frame counts once a sample
    assert "run (faust/worker.py)" not in total  # only streamproc's own functions
