"""Standard Webhooks signatures: ours verify with the independent ``standardwebhooks`` package and back."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from streamproc.delivery import signing

BODY = b'{"event_id": "a1", "type": "alert"}'


def test_our_signature_verifies_with_the_independent_implementation_and_theirs_with_ours() -> None:
    secret = signing.new_secret()
    now = int(time.time())
    Webhook(secret).verify(BODY, signing.headers(secret, "a1", now, BODY))
    theirs = Webhook(secret).sign("a2", datetime.fromtimestamp(now, timezone.utc), BODY.decode())
    signing.verify(secret, {"webhook-id": "a2", "webhook-timestamp": str(now), "webhook-signature": theirs}, BODY, now)


@pytest.mark.parametrize("change,message", [
    (lambda h, b, s: (h, b + b" ", s), "no matching signature"),
    (lambda h, b, s: (h, b, signing.new_secret()), "no matching signature"),
    (lambda h, b, s: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 600)}, b, s), "timestamp too old"),
    (lambda h, b, s: ({k: v for k, v in h.items() if k != "webhook-id"}, b, s), "missing header webhook-id"),
])
def test_a_changed_body_secret_or_timestamp_is_refused_with_its_reason(change, message: str) -> None:  # noqa: ANN001
    secret, now = signing.new_secret(), int(time.time())
    headers, body, key = change(signing.headers(secret, "a1", now, BODY), BODY, secret)
    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(key, headers, body, now)


def test_several_signatures_in_the_header_one_of_them_right() -> None:
    secret, now = signing.new_secret(), int(time.time())
    h = signing.headers(secret, "a1", now, BODY)
    h["webhook-signature"] = "v1,bm9wZQ== " + h["webhook-signature"]
    signing.verify(secret, h, BODY, now)
