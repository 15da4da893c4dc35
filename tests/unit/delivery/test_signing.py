"""Standard Webhooks signatures: ours verify with the independent ``standardwebhooks`` package and back;
a changed body, another secret, a stale or future timestamp or a missing header is refused with its reason."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from streamproc.delivery import signing

BODY = b'{"event_id": "a1", "type": "alert"}'
Headers = dict[str, str]


def test_the_specifications_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    h = signing.headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert h == {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                 "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                 "content-type": "application/json"}
    signing.verify(secret, h, body, now=1614265330 + 299)


def test_our_signature_verifies_with_the_independent_implementation() -> None:
    secret, now = signing.new_secret(), int(time.time())
    assert Webhook(secret).verify(BODY, signing.headers(secret, "a1", now, BODY)) == {"event_id": "a1", "type": "alert"}


def test_their_signature_verifies_with_ours() -> None:
    secret, now = signing.new_secret(), int(time.time())
    theirs = Webhook(secret).sign("a2", datetime.fromtimestamp(now, timezone.utc), BODY)
    signing.verify(secret, {"webhook-id": "a2", "webhook-timestamp": str(now), "webhook-signature": theirs}, BODY, now)


def test_the_independent_implementation_refuses_what_ours_refuses() -> None:
    secret, now = signing.new_secret(), int(time.time())
    h = signing.headers(secret, "a1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"a1", b"a2"), h)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, h)


def flip_a_byte(h: Headers, body: bytes, secret: str) -> tuple[Headers, bytes, str]:
    return h, body[:5] + bytes([body[5] ^ 1]) + body[6:], secret


def other_secret(h: Headers, body: bytes, secret: str) -> tuple[Headers, bytes, str]:
    return h, body, signing.new_secret()


def shifted(seconds: int) -> Callable[[Headers, bytes, str], tuple[Headers, bytes, str]]:
    def change(h: Headers, body: bytes, secret: str) -> tuple[Headers, bytes, str]:
        return {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + seconds)}, body, secret
    return change


def without(name: str) -> Callable[[Headers, bytes, str], tuple[Headers, bytes, str]]:
    def change(h: Headers, body: bytes, secret: str) -> tuple[Headers, bytes, str]:
        return {k: v for k, v in h.items() if k != name}, body, secret
    return change


def timestamp_in_ms(h: Headers, body: bytes, secret: str) -> tuple[Headers, bytes, str]:
    return {**h, "webhook-timestamp": h["webhook-timestamp"] + ".5"}, body, secret


@pytest.mark.parametrize("change,message", [
    (flip_a_byte, "no matching signature"),
    (other_secret, "no matching signature"),
    (shifted(-301), "timestamp too old: 301s ago"),
    (shifted(301), "timestamp too new: 301s ahead"),
    (without("webhook-id"), "missing header webhook-id"),
    (without("webhook-timestamp"), "missing header webhook-timestamp"),
    (without("webhook-signature"), "missing header webhook-signature"),
    (timestamp_in_ms, "is not a Unix time"),
])
def test_a_changed_body_secret_or_timestamp_is_refused_with_its_reason(
        change: Callable[[Headers, bytes, str], tuple[Headers, bytes, str]], message: str) -> None:
    secret, now = signing.new_secret(), int(time.time())
    h, body, key = change(signing.headers(secret, "a1", now, BODY), BODY, secret)
    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(key, h, body, now)


def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted() -> None:
    secret = signing.new_secret()
    h = signing.headers(secret, "a1", 1000, BODY)
    signing.verify(secret, h, BODY, now=1300)
    signing.verify(secret, h, BODY, now=700)
    signing.verify(secret, h, BODY, now=1900, tolerance_s=900)


def test_several_signatures_in_the_header_one_of_them_right() -> None:
    secret, now = signing.new_secret(), int(time.time())
    h = signing.headers(secret, "a1", now, BODY)
    h["webhook-signature"] = "v1,bm9wZQ== " + h["webhook-signature"] + " v1a,c29tZXRoaW5nIGVsc2U="
    signing.verify(secret, h, BODY, now)
    Webhook(secret).verify(BODY, h)


def test_the_right_signature_under_another_version_is_refused() -> None:
    secret, now = signing.new_secret(), int(time.time())
    h = signing.headers(secret, "a1", now, BODY)
    h["webhook-signature"] = h["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(signing.SignatureError, match="no matching signature"):
        signing.verify(secret, h, BODY, now)


def test_header_names_in_any_case() -> None:
    secret, now = signing.new_secret(), int(time.time())
    h = {k.title(): v for k, v in signing.headers(secret, "a1", now, BODY).items()}
    assert "Webhook-Signature" in h
    signing.verify(secret, h, BODY, now)


def test_new_secrets_are_24_random_bytes_and_unpadded_secrets_work_as_elsewhere() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_") and len(base64.b64decode(a.removeprefix("whsec_"))) == 24
    unpadded = "whsec_" + base64.b64encode(b"0123456789").decode().rstrip("=")
    now = int(time.time())
    Webhook(unpadded).verify(BODY, signing.headers(unpadded, "a1", now, BODY))


@pytest.mark.parametrize("secret", ["whsec_", "whsec_abc!"])
def test_a_secret_that_is_not_base64_is_an_error_of_configuration(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret") as info:
        signing.sign(secret, "a1", 0, BODY)
    assert not isinstance(info.value, signing.SignatureError)
