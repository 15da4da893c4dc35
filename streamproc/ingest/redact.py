"""Redaction of a rejected record before it is stored on the dead-letter topic.

In: the record's original bytes. Out: the same bytes with every identifier that may carry
personal data replaced by its key (see ``pseudonym``): ``customer_id``, ``event_id``,
``session_id``, ``order_id``, ``email``, ``phone``, ``ip``; in the free-text fields (a
feedback's ``text``, a search's ``query``) e-mail addresses, phone numbers and long digit
strings are masked (see ``mask``). A JSON object is rewritten field by field; anything else (truncated or broken JSON) is scrubbed by pattern: quoted values of
those fields, e-mail addresses, phone numbers and IPv4 addresses. Keys pass through the
decoder unchanged, so a redacted record can be replayed once its problem is fixed.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from streamproc.ingest.mask import EMAIL, mask_text
from streamproc.ingest.pseudonym import Pseudonymiser

FIELDS = {"customer_id": "customer", "event_id": "event", "session_id": "session", "order_id": "order",
          "email": "email", "phone": "phone", "ip": "ip"}
FREE_TEXT = frozenset({"text", "query"})
_PATTERN = re.compile(
    r'(?P<key>\bk\d+_[0-9a-f]{32}\b)'
    r'|"(?P<field>customer_id|event_id|session_id|order_id|email|phone|ip)"(?P<sep>\s*:\s*)"(?P<value>(?:[^"\\]|\\.)*)"?'
    rf"|{EMAIL}"
    r"|(?P<ip>\b\d{1,3}(?:\.\d{1,3}){3}\b)"
    r"|(?P<phone>\+?\d[\d ()-]{6,}\d)"
)


def _redact_value(name: str, value: Any, pseudonyms: Pseudonymiser) -> Any:
    if not isinstance(value, str):
        return value
    if name in FIELDS:
        return pseudonyms.key(FIELDS[name], value)
    return mask_text(value) if name in FREE_TEXT else value


def _redact_doc(doc: dict[str, Any], pseudonyms: Pseudonymiser) -> dict[str, Any]:
    return {k: _redact_value(k, v, pseudonyms) for k, v in doc.items()}


def _replace(m: re.Match[str], pseudonyms: Pseudonymiser) -> str:
    if m["key"]:
        return m["key"]
    if m["field"]:
        return f'"{m["field"]}"{m["sep"]}"{pseudonyms.key(FIELDS[m["field"]], m["value"])}"'
    kind = next(k for k in ("email", "ip", "phone") if m[k])
    return pseudonyms.key(kind, m[kind])


def _scrub(text: str, pseudonyms: Pseudonymiser) -> str:
    """One left-to-right pass, so a key just written is never scrubbed again."""
    return _PATTERN.sub(lambda m: _replace(m, pseudonyms), text)


def redact(raw: bytes, pseudonyms: Pseudonymiser) -> bytes:
    """``raw`` with identifiers keyed; bytes that are not UTF-8 are returned as they are."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        return orjson.dumps(_redact_doc(doc, pseudonyms))
    try:
        return _scrub(raw.decode("utf-8"), pseudonyms).encode()
    except UnicodeDecodeError:
        return raw
