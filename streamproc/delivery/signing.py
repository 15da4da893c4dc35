"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure.

In: the endpoint's secret (``whsec_<base64 key>``), the message id, a Unix timestamp and the
exact body bytes. Out: the headers a receiver verifies: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp." + body>``. ``verify`` is the
receiving side, as a CRM (or the demo's receiver) runs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"


class SignatureError(ValueError):
    """A webhook's signature headers do not check out; the message says which part."""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<signature>`` of one message."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers of one delivery attempt."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body), "content-type": "application/json"}


def verify(secret: str, received: Mapping[str, str], body: bytes, now: float, tolerance_s: float = 300) -> None:
    """Raise ``SignatureError`` unless ``received`` headers sign ``body`` with ``secret`` within ``tolerance_s`` of ``now``."""
    h = {k.lower(): v for k, v in received.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not h.get(name):
            raise SignatureError(f"missing header {name}")
    try:
        ts = int(h["webhook-timestamp"])
    except ValueError:
        raise SignatureError(f"webhook-timestamp {h['webhook-timestamp']!r} is not a Unix time") from None
    if ts < now - tolerance_s:
        raise SignatureError(f"timestamp too old: {now - ts:.0f}s ago (more than {tolerance_s:.0f}s)")
    if ts > now + tolerance_s:
        raise SignatureError(f"timestamp too new: {ts - now:.0f}s ahead (more than {tolerance_s:.0f}s)")
    expected = sign(secret, h["webhook-id"], ts, body).split(",", 1)[1]
    for candidate in h["webhook-signature"].split():
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return
    raise SignatureError("no matching signature: wrong secret, or the body changed")


def new_secret() -> str:
    """A new random signing secret (24 bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
