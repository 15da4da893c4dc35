"""Topic administration: create every topic of ``topics.json`` on the broker."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streamproc.contracts import Contracts
from streamproc.settings import get_settings

log = logging.getLogger(__name__)


def bootstrap(kafka_url: str) -> str:
    """``kafka://h1:9092,h2:9092`` -> ``h1:9092,h2:9092`` for aiokafka."""
    return ",".join(part.split("://", 1)[-1] for part in kafka_url.split(","))


async def create_topics(kafka_url: str, contracts: Contracts) -> list[str]:
    """Create missing topics; returns the names created (existing ones are left as they are)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(kafka_url), **get_settings().kafka_security())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(t.name, t.partitions, 1, topic_configs=t.config())
               for t in contracts.topics if t.name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                log.info("topics were created concurrently by another process")
        return [t.name for t in new]
    finally:
        await admin.close()
