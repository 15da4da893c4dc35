"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure, standard library only.

In: the endpoint's secret (``whsec_<base64 of the key bytes>``), the message id, a Unix timestamp
(whole seconds) and the exact body bytes. Out: the headers of a delivery: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 of HMAC-SHA256(key, "id.timestamp." + body)>``
and ``content-type: application/json``. ``verify`` is the receiving side, as a CRM runs it: it
raises ``SignatureError`` saying what is wrong (a missing header, a timestamp out of tolerance, no
matching signature). The signature header may hold several space-separated ``v1,...`` values
(while a secret is rotated); one matching is enough.

>>> secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the specification's test vector
>>> sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"
REQUIRED = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(ValueError):
    """A webhook's signature headers do not check out; the message says which part."""


def _key(secret: str) -> bytes:
    """The key bytes of ``whsec_<base64>`` (padding optional, as other implementations accept)."""
    encoded = secret.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<signature>`` of one message."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers of one delivery attempt."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body), "content-type": "application/json"}


def _timestamp(value: str, now: float, tolerance_s: float) -> int:
    """The ``webhook-timestamp`` as an int, if within ``tolerance_s`` of ``now``."""
    try:
        ts = int(value)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {value!r} is not a Unix time in seconds") from None
    if ts < now - tolerance_s:
        raise SignatureError(f"timestamp too old: {now - ts:.0f}s ago (more than {tolerance_s:.0f}s)")
    if ts > now + tolerance_s:
        raise SignatureError(f"timestamp too new: {ts - now:.0f}s ahead (more than {tolerance_s:.0f}s)")
    return ts


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance_s: float = 300) -> None:
    """Raise ``SignatureError`` unless ``headers`` sign ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    Header names are matched without regard to case.
    """
    h = {k.lower(): v for k, v in headers.items()}
    for name in REQUIRED:
        if not h.get(name):
            raise SignatureError(f"missing header {name}")
    ts = _timestamp(h["webhook-timestamp"], now, tolerance_s)
    expected = sign(secret, h["webhook-id"], ts, body).encode()
    if not any(hmac.compare_digest(candidate.encode(), expected) for candidate in h["webhook-signature"].split()):
        raise SignatureError("no matching signature: wrong secret, or the body changed")


def new_secret() -> str:
    """A new random signing secret: 24 random bytes, ``whsec_`` and base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
