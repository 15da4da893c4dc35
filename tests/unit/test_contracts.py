"""Topic contracts load, and a broken contract file is refused with a message that says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from streamproc.contracts import load_contracts
from streamproc.errors import ConfigError
from streamproc.settings import DEFAULT_TOPICS_DIR


def test_roles_and_copartitioned_inputs() -> None:
    c = load_contracts(DEFAULT_TOPICS_DIR)
    assert [t.name for t in c.inputs] == ["clickstream", "purchases", "feedback"]
    assert {c.one(r).name for r in ("segments", "alerts", "dead-letter")} == {"segments", "alerts", "dead-letter"}
    assert set(c.validators) == {"clickstream", "purchase", "feedback"}


def _copy(tmp_path: Path, edit) -> Path:  # noqa: ANN001
    folder = tmp_path / "topics"
    shutil.copytree(DEFAULT_TOPICS_DIR, folder)
    doc = json.loads((folder / "topics.json").read_text())
    edit(doc["topics"])
    (folder / "topics.json").write_text(json.dumps(doc))
    return folder


def test_inputs_with_different_partition_counts_are_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path, lambda ts: ts[1].update(partitions=8))
    with pytest.raises(ConfigError, match="share one partition count"):
        load_contracts(folder)


def test_missing_output_role_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path, lambda ts: ts.pop())
    with pytest.raises(ConfigError, match="'erasure'"):
        load_contracts(folder)


def test_missing_folder_says_which_variable_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STREAMPROC_TOPICS_DIR"):
        load_contracts(tmp_path)
