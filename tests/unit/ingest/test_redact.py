"""Redaction of dead-lettered records (``ingest.redact``): identifiers keyed, free text masked."""

from __future__ import annotations

import orjson

from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.ingest.redact import redact

KEYS = Pseudonymiser(b"test-secret")


def test_identifiers_are_keyed_and_free_text_is_masked() -> None:
    raw = orjson.dumps({"event_id": "e1", "type": "feedback", "customer_id": "C00042", "channel": "web",
                        "text": "refund card 4111 1111 1111 1111, mail jane@example.com, 5/5 otherwise",
                        "email": "jane@example.com"})
    doc = orjson.loads(redact(raw, KEYS))
    assert doc["customer_id"] == KEYS.customer("C00042") and doc["email"] == KEYS.key("email", "jane@example.com")
    assert doc["text"] == "refund card [number], mail [email], 5/5 otherwise"
    assert doc["channel"] == "web"


def test_a_search_query_is_masked_too() -> None:
    raw = orjson.dumps({"type": "clickstream", "query": "order of +44 7700 900042", "page": "/search"})
    assert orjson.loads(redact(raw, KEYS))["query"] == "order of [phone]"


def test_a_redacted_record_is_redacted_again_unchanged() -> None:
    raw = orjson.dumps({"customer_id": "C1", "text": "call 0044 20 7946 0958", "rating": "nine"})
    once = redact(raw, KEYS)
    assert redact(once, KEYS) == once


def test_broken_json_is_scrubbed_by_pattern() -> None:
    raw = b'{"customer_id": "C1", "text": "mail jane@example.com or 4111 1111 1111 1111'
    out = redact(raw, KEYS).decode()
    assert "jane@example.com" not in out and "4111" not in out and '"C1"' not in out
