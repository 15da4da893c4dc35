"""Kafka SASL/TLS settings reach every client: aiokafka's keyword arguments and Faust's credentials."""

from __future__ import annotations

import ssl

from streamproc.runtime.app import credentials
from streamproc.settings import Settings


def test_plaintext_adds_nothing() -> None:
    assert Settings().kafka_security() == {} and credentials(Settings()) is None


def test_sasl_ssl_passes_mechanism_user_password_and_a_tls_context() -> None:
    s = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="svc",
                 kafka_sasl_password="pw")
    opts = s.kafka_security()
    assert {k: v for k, v in opts.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "svc",
        "sasl_plain_password": "pw"}
    assert isinstance(opts["ssl_context"], ssl.SSLContext) and opts["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    cred = credentials(s)
    assert (cred.username, cred.password, cred.mechanism.value) == ("svc", "pw", "SCRAM-SHA-512")


def test_ssl_without_sasl_and_sasl_without_tls() -> None:
    assert set(Settings(kafka_security_protocol="SSL").kafka_security()) == {"security_protocol", "ssl_context"}
    plain = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password="p")
    assert "ssl_context" not in plain.kafka_security() and credentials(plain).ssl_context is None
