"""Topic contracts: ``topics/topics.json`` and the JSON Schemas beside it.

In: the topics folder named by settings. Out: ``Contracts``, which names every topic by its
role (``input``, ``segments``, ``alerts``, ``dead-letter``, ``training``, ``model-health``, ``erasure``) and
holds one compiled validator per
input event type. No other module spells a topic name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

from streamproc.errors import ConfigError

ROLES = ("input", "segments", "alerts", "dead-letter", "training", "model-health", "erasure")


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the contract file declares it."""

    name: str
    role: str
    event_type: str
    schema_path: Path
    partitions: int
    key: str
    cleanup_policy: str
    retention_ms: int | None

    def config(self) -> dict[str, str]:
        """Kafka topic configs for topic creation."""
        cfg = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


@dataclass(frozen=True)
class Contracts:
    """Every topic of the product, addressed by role."""

    topics: tuple[TopicSpec, ...]
    validators: dict[str, Callable[[Any], Any]]

    @property
    def inputs(self) -> tuple[TopicSpec, ...]:
        return tuple(t for t in self.topics if t.role == "input")

    def one(self, role: str) -> TopicSpec:
        """The single topic of an output role (``segments``, ``alerts``, ``dead-letter``)."""
        found = [t for t in self.topics if t.role == role]
        if len(found) != 1:
            raise ConfigError(f"topics.json must declare exactly one topic with role {role!r}, found {len(found)}")
        return found[0]

    def input_by_name(self) -> dict[str, TopicSpec]:
        return {t.name: t for t in self.inputs}


def _spec(entry: dict[str, Any], folder: Path) -> TopicSpec:
    try:
        spec = TopicSpec(
            name=entry["name"], role=entry["role"], event_type=entry["event_type"],
            schema_path=folder / entry["schema"], partitions=int(entry["partitions"]),
            key=entry["key"], cleanup_policy=entry.get("cleanup_policy", "delete"),
            retention_ms=entry.get("retention_ms"),
        )
    except KeyError as exc:
        raise ConfigError(f"{folder / 'topics.json'}: topic entry {entry!r} lacks field {exc}") from exc
    if spec.role not in ROLES:
        raise ConfigError(f"topic {spec.name!r}: role {spec.role!r} is not one of {ROLES}")
    if not spec.schema_path.is_file():
        raise ConfigError(f"topic {spec.name!r}: schema file {spec.schema_path} does not exist")
    return spec


def _check_copartitioned(inputs: tuple[TopicSpec, ...]) -> None:
    counts = {t.partitions for t in inputs}
    if len(counts) > 1:
        raise ConfigError(
            "input topics must share one partition count so each customer's events meet on one "
            f"worker; topics.json has {sorted(counts)}"
        )


def load_contracts(folder: Path) -> Contracts:
    """Read and check ``folder/topics.json`` and compile the input schemas."""
    index = folder / "topics.json"
    if not index.is_file():
        raise ConfigError(f"no topic contracts at {index}: set STREAMPROC_TOPICS_DIR to the topics/ folder")
    topics = tuple(_spec(e, folder) for e in orjson.loads(index.read_bytes())["topics"])
    for role in ROLES[1:]:
        Contracts(topics, {}).one(role)
    inputs = tuple(t for t in topics if t.role == "input")
    _check_copartitioned(inputs + tuple(t for t in topics if t.role == "erasure"))
    validators = {t.event_type: fastjsonschema.compile(orjson.loads(t.schema_path.read_bytes())) for t in inputs}
    return Contracts(topics, validators)
