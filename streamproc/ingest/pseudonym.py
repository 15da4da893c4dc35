"""Pseudonymised keys: customer ids and personal data replaced by a keyed HMAC at ingestion.

In: raw identifiers (customer id, e-mail, phone, IP) and the secret from settings. Out:
keys of the form ``k<version>_<32 hex digits>`` (HMAC-SHA256 of the normalised value under a
purpose label, truncated to 128 bits). A CRM holding the same secret computes the same key
with ``streamproc key`` or these five lines. Raw values never pass this module.

Already-keyed values (matching ``k<N>_<32 hex>``) pass through unchanged, so a dead-lettered
record, whose personal data was keyed before it was stored, can be replayed.

>>> p = Pseudonymiser(b"secret", version=1)
>>> p.customer(" c00042 ") == p.customer("C00042")
True
>>> p.customer("C00042")[:3]
'k1_'
"""

from __future__ import annotations

import hashlib
import hmac
import re

from streamproc.ingest.clean import KEYED, normalise_customer_id


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def normalise_phone(raw: str) -> str:
    """Digits only, keeping a leading ``+``: ``+44 (0)7700-900042`` -> ``+4407700900042``."""
    text = raw.strip()
    return ("+" if text.startswith("+") else "") + re.sub(r"\D", "", text)


def _same(raw: str) -> str:
    return raw


NORMALISE = {"customer": normalise_customer_id, "email": normalise_email, "phone": normalise_phone,
             "ip": str.strip, "event": _same, "session": _same, "order": _same}


CACHED = frozenset({"customer", "session", "order"})  # repeat across events; event ids do not
CACHE_SIZE = 200_000


class Pseudonymiser:
    """Computes keys under one secret and key version (repeating ids from a bounded cache)."""

    def __init__(self, secret: bytes, version: int = 1) -> None:
        if not secret:
            raise ValueError("the pseudonymisation secret must not be empty")
        self.version = version
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)  # keyed once; copied per value
        self._cache: dict[tuple[str, str], str] = {}

    def key(self, purpose: str, raw: str) -> str:
        """The key of ``raw`` for ``purpose``: ``customer``, ``email``, ``phone``, ``ip``, or the
        ``event``, ``session`` and ``order`` ids, which producers often build from customer ids."""
        if purpose in CACHED:
            found = self._cache.get((purpose, raw))
            if found is None:
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                found = self._cache[(purpose, raw)] = self._compute(purpose, raw)
            return found
        return self._compute(purpose, raw)

    def _compute(self, purpose: str, raw: str) -> str:
        if KEYED.match(raw):
            return raw
        mac = self._mac.copy()
        mac.update(f"{purpose}:{NORMALISE[purpose](raw)}".encode())
        return f"k{self.version}_{mac.digest()[:16].hex()}"

    def customer(self, raw: str) -> str:
        return self.key("customer", raw)
