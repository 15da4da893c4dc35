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


class Pseudonymiser:
    """Computes keys under one secret and key version."""

    def __init__(self, secret: bytes, version: int = 1) -> None:
        if not secret:
            raise ValueError("the pseudonymisation secret must not be empty")
        self._secret, self.version = secret, version

    def key(self, purpose: str, raw: str) -> str:
        """The key of ``raw`` for ``purpose``: ``customer``, ``email``, ``phone``, ``ip``, or the
        ``event``, ``session`` and ``order`` ids, which producers often build from customer ids."""
        if KEYED.match(raw):
            return raw
        value = NORMALISE[purpose](raw)
        digest = hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"k{self.version}_{digest[:32]}"

    def customer(self, raw: str) -> str:
        return self.key("customer", raw)
