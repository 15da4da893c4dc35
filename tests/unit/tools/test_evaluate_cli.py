"""``streamproc evaluate`` writes a file only where ``--plot`` asks, never into the directory it runs from."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from streamproc.cli import cli

SMALL = ["evaluate", "--customers", "20", "--days", "30", "--json"]


def evaluate_in_empty_dir(extra: list[str]) -> set[str]:
    """Run a small ``evaluate`` from an empty working directory; the names it left there."""
    runner = CliRunner()
    with runner.isolated_filesystem() as cwd:
        result = runner.invoke(cli, [*SMALL, *extra])
        assert result.exit_code == 0, result.output[-3000:]
        assert "events" in orjson.loads(result.output.strip().splitlines()[-1])
        return {str(p.relative_to(cwd)) for p in Path(cwd).rglob("*")}


@pytest.fixture(autouse=True)
def no_streamproc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("STREAMPROC_")]:
        monkeypatch.delenv(name)


def test_without_plot_nothing_is_written() -> None:
    assert evaluate_in_empty_dir([]) == set()


def test_the_plot_goes_where_asked_and_nowhere_else() -> None:
    assert evaluate_in_empty_dir(["--plot", "out.png"]) == {"out.png"}
