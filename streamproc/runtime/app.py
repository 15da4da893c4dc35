"""The Faust app: built from settings, with no logic of its own.

Its consumer waits at most ``STREAMPROC_FETCH_MAX_WAIT_MS`` for an empty fetch, where Faust 0.15
fixes 1.5 s. The override of Faust's internals that does it lives in ``runtime.faust_compat``.
"""

from __future__ import annotations

import faust

from streamproc.runtime.admin import bootstrap
from streamproc.runtime.faust_compat import FetchWaitApp, set_fetch_max_wait
from streamproc.settings import Settings


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings``; agents are attached by ``runtime.agents``.

    Faust's data directory is ``<data_dir>/<app_id>``, never the current directory.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = FetchWaitApp(
        settings.app_id,
        broker=[f"kafka://{h}" for h in bootstrap(settings.kafka_url).split(",")],
        store="memory://",
        datadir=settings.data_dir / settings.app_id,
        web_port=settings.web_port,
        web_host=settings.web_host,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
        broker_credentials=credentials(settings),
    )
    set_fetch_max_wait(app, settings.fetch_max_wait_ms)
    return app


def credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's broker credentials for the configured Kafka security protocol (None: plaintext)."""
    protocol, ctx = settings.kafka_security_protocol, settings.kafka_ssl_context()
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username,
                                     password=settings.kafka_sasl_password.get_secret_value(),
                                     mechanism=settings.kafka_sasl_mechanism, ssl_context=ctx)
    return faust.SSLCredentials(ctx) if ctx is not None else None
