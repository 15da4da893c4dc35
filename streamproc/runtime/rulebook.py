"""The trigger rules in force, and their publication: a worker's copy follows the published version.

``publish`` stores a checked rules file as the next version (``streamproc rules publish``);
``RuleBook.current`` reads the published version at most every ``check_s`` seconds and parses
a new one once, so every worker switches within about a second, at a batch boundary (the
processor asks before each batch). Before anything is published, the worker's own rules file
(``STREAMPROC_RULES_FILE`` or the default) is in force as version 0.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import redis.asyncio as aioredis

from streamproc.decisions import rulefile
from streamproc.decisions.triggers import RuleSet
from streamproc.errors import RulesInvalid
from streamproc.runtime.redis_keys import RedisKeys

log = logging.getLogger(__name__)


async def publish(client: aioredis.Redis, keys: RedisKeys, text: str, name: str) -> RuleSet:
    """Check ``text`` and store it as the next published version; returns it (raises ``RulesInvalid``)."""
    rulefile.parse(text, name)
    version = int(await client.hget(keys.rules, "version") or 0) + 1
    rs = rulefile.parse(text, name, version)
    doc = {"version": version, "text": text, "digest": rs.digest, "name": name,
           "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.rules_version(version), mapping=doc)
        pipe.hset(keys.rules, mapping=doc)
        await pipe.execute()
    return rs


async def published(client: aioredis.Redis, keys: RedisKeys) -> dict[str, str]:
    """The published version's fields (empty before the first publication)."""
    raw = await client.hgetall(keys.rules)
    return {k.decode(): v.decode() for k, v in raw.items()}


class RuleBook:
    """A worker's copy of the rules in force: its own file until a version is published."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, own: RuleSet, check_s: float = 1.0) -> None:
        self.r, self.keys, self.check_s = client, keys, check_s
        self.rules = own
        self._checked = float("-inf")
        self._refused = 0

    async def current(self) -> RuleSet:
        now = time.monotonic()
        if now - self._checked < self.check_s:
            return self.rules
        self._checked = now
        version = int(await self.r.hget(self.keys.rules, "version") or 0)
        if version in (0, self.rules.version, self._refused):
            return self.rules
        text, name = await self.r.hmget(self.keys.rules_version(version), "text", "name")
        if text is None:
            return self.rules
        try:
            self.rules = rulefile.parse(text.decode(), (name or b"published").decode(), version)
        except RulesInvalid as exc:  # published by a streamproc whose catalogue differs from this one
            log.error("published rules version %d cannot be used by this worker; keeping version %d:\n%s",
                      version, self.rules.version, exc)
            self._refused = version
            return self.rules
        log.info("trigger rules version %d (%s, %d rules) in force", version, self.rules.digest, len(self.rules.rules))
        return self.rules
