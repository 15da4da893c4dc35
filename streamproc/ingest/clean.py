"""Cleaning and standardisation of a parsed event, before its contract is checked.

In: the JSON object of one record. Out: the object with safe corrections applied and the
list of correction kinds made, or a ``Reject`` naming what cannot be corrected safely.

============================ ============================================================
correction kind              what is corrected
============================ ============================================================
``ts_epoch``                 ``ts`` given as epoch seconds or milliseconds -> ISO-8601 UTC
``ts_format``                a space instead of ``T``, a compact ``+0000`` offset, lower-case
                             ``t``/``z``, surrounding blanks
``number_string``            an amount, quantity, rating or NPS sent as a numeric string
``id_normalised``            ids with surrounding blanks (a customer id's case is no correction:
                             its key is computed from it upper-cased, see ``pseudonym``)
``currency_case``            ``eur`` -> ``EUR``
``url_tracking_removed``     ``utm_*``, ``gclid``, ``fbclid`` and similar query parameters
============================ ============================================================

A timestamp without a zone is not corrected: its zone cannot be known (``bad_timestamp``).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING = re.compile(r"^(utm_[a-z_]+|gclid|gbraid|wbraid|fbclid|msclkid|dclid|mc_eid|mc_cid|_hsenc|_hsmkt|igshid|yclid)$", re.I)
_ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
_NUMERIC = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
ID_FIELDS = ("customer_id", "event_id", "session_id", "order_id")


class Reject(Exception):
    """A record that cannot be corrected safely: a reason code and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def clean_ts(value: Any, fixes: list[str]) -> Any:
    """Epoch numbers and ISO-8601 variants to ``YYYY-MM-DDTHH:MM:SS[.f]+HH:MM``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        fixes.append("ts_epoch")
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError) as exc:
            raise Reject("bad_timestamp", f"epoch ts {value!r} is not a representable time") from exc
    if not isinstance(value, str):
        return value
    text = value.strip().upper()
    if len(text) > 10 and text[10] == " ":
        text = text[:10] + "T" + text[11:]
    zone = _ZONE.search(text, max(len(text) - 6, 0))  # a zone is the last 1, 5 or 6 characters
    if not zone:
        raise Reject("bad_timestamp", f"ts {value!r} has no zone offset; send one, e.g. +00:00 or Z")
    if len(zone.group()) == 5:  # a compact offset, +HHMM
        text = f"{text[:-2]}:{text[-2:]}"
    if text != value:
        fixes.append("ts_format")
    return text


def _number(value: Any, kind: type, fixes: list[str]) -> Any:
    if isinstance(value, str) and _NUMERIC.match(value):
        fixes.append("number_string")
        return kind(float(value)) if kind is int and float(value).is_integer() else float(value)
    return value


def clean_url(url: Any, fixes: list[str]) -> Any:
    if not isinstance(url, str) or "?" not in url:
        return url
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING.match(k)]
    cleaned = urlunsplit(parts._replace(query=urlencode(query)))
    if cleaned != url:
        fixes.append("url_tracking_removed")
    return cleaned


def _ids(doc: dict[str, Any], fixes: list[str]) -> None:
    """Blanks around ids removed; counted only when that changes an id."""
    for name in ID_FIELDS:
        v = doc.get(name)
        if isinstance(v, str) and v != v.strip():
            doc[name] = v.strip()
            fixes.append("id_normalised")


KEYED = re.compile(r"^k\d+_[0-9a-f]{32}$")


def normalise_customer_id(raw: str) -> str:
    """The canonical form of a customer id: no surrounding blanks, upper case. A pseudonymised
    key (``k<N>_<hex>``, as in a replayed dead letter) is already canonical."""
    text = raw.strip()
    return text if KEYED.match(text) else text.upper()


def _amounts(doc: dict[str, Any], fixes: list[str]) -> None:
    for name in ("total", "price"):
        if name in doc:
            doc[name] = _number(doc[name], float, fixes)
    for name in ("quantity", "rating", "nps"):
        if name in doc:
            doc[name] = _number(doc[name], int, fixes)
    items = doc.get("items")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                for name, kind in (("price", float), ("quantity", int)):
                    if name in item:
                        item[name] = _number(item[name], kind, fixes)
    cur = doc.get("currency")
    if isinstance(cur, str) and cur != cur.strip().upper():
        doc["currency"] = cur.strip().upper()
        fixes.append("currency_case")


def clean(doc: dict[str, Any]) -> list[str]:
    """Correct ``doc`` in place; returns the correction kinds made (one entry per correction)."""
    fixes: list[str] = []
    if "ts" in doc:
        doc["ts"] = clean_ts(doc["ts"], fixes)
    _ids(doc, fixes)
    _amounts(doc, fixes)
    for name in ("page", "referrer"):
        if name in doc:
            doc[name] = clean_url(doc[name], fixes)
    return fixes
