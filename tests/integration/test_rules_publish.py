"""Publishing rules: a running processor switches to the published version at its next batch,
and every alert names the version it fired under."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from streamproc.errors import RulesInvalid
from streamproc.ordering import Consumed
from streamproc.runtime import assemble
from streamproc.runtime.rulebook import RuleBook, publish, published
from tests.builders import SETTINGS, minute_click
from tests.processing import Published

ON_CLICK = """
rules:
  - {id: every_click, version: 7, severity: info, on: [click], fire: every, message: "click {event.action}"}
"""


def test_a_published_version_is_in_force_from_the_next_batch(redis_url, contracts) -> None:  # noqa: ANN001
    async def scenario() -> tuple[list, list, dict, str]:
        client = aioredis.Redis.from_url(redis_url)
        keys = assemble.redis_keys(SETTINGS)
        sent = Published()
        settings = SETTINGS.model_copy(update={"idle_after_s": 0.0})
        proc = assemble.processor(settings, contracts, sent, store=assemble.redis_store(settings, client))
        proc.rulebook = RuleBook(client, keys, settings.rules().triggers, check_s=0.0)
        await proc.handle([Consumed("clickstream", 0, i, minute_click(i)) for i in range(3)])
        before = list(sent.on("alerts"))
        refused = ""
        try:
            await publish(client, keys, ON_CLICK.replace("on: [click]", "on: [clik]"), "bad.yaml")
        except RulesInvalid as exc:
            refused = str(exc)
        rs = await publish(client, keys, ON_CLICK, "clicks.yaml")
        await proc.handle([Consumed("clickstream", 0, i, minute_click(i)) for i in range(3, 5)])
        doc = await published(client, keys)
        await client.aclose()
        return before, sent.on("alerts"), doc | {"digest_published": rs.digest}, refused

    before, after, doc, refused = asyncio.run(scenario())
    assert before == []  # the default rules fire on no click
    assert "bad.yaml" in refused and "'clik' is not one of" in refused
    assert doc["version"] == "1" and doc["name"] == "clicks.yaml"
    assert [(a["rule"], a["rule_version"], a["ruleset_version"], a["ruleset_digest"]) for a in after] == [
        ("every_click", 7, 1, doc["digest_published"])] * 2
