"""Configuration: one frozen settings object read from ``STREAMPROC_*`` environment variables.

Every field has a default that runs the embedded development stack. ``kafka_url`` and
``redis_url`` left empty mean "not configured": ``streamproc dev`` and ``streamproc demo``
then start a broker and a Redis of their own, while ``streamproc worker`` refuses to start.
"""

from __future__ import annotations

import os
import ssl
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamproc.contracts import Contracts
from streamproc.decisions import rulefile
from streamproc.decisions.rules import Rules
from streamproc.ingest.decode import Decoder, TimeBounds
from streamproc.ingest.pseudonym import Pseudonymiser
from streamproc.state.items import ItemParams
from streamproc.state.sessions import SessionRules

DEV_SECRET = "streamproc-development-secret"
_PACKAGE = Path(__file__).resolve().parent


def default_topics_dir(package: Path = _PACKAGE) -> Path:
    """The repository's ``topics/`` in a checkout or editable install, else the copy inside the package.

    A checkout is a package folder with the repository's ``pyproject.toml`` beside it; a wheel
    carries the contracts as ``streamproc/topics/`` (``setup.py`` copies them at build time).

    >>> default_topics_dir(Path("/src/repo/streamproc")) == Path("/src/repo/streamproc/topics")  # no pyproject.toml
    True
    """
    checkout = package.parent
    return checkout / "topics" if (checkout / "pyproject.toml").is_file() else package / "topics"


DEFAULT_TOPICS_DIR = default_topics_dir()


def default_data_dir() -> Path:
    """``$XDG_STATE_HOME/streamproc``, else ``~/.local/state/streamproc``: a per-user folder that
    survives restarts and never depends on the directory a command was started from."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "streamproc"


class WebhookEndpoint(BaseModel):
    """A CRM endpoint that receives alerts as signed webhooks (Standard Webhooks)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Short name; rules list it in 'destinations'.")
    url: str = Field(pattern=r"^https?://", description="Where alerts are POSTed.")
    secret: SecretStr = Field(description="Signing secret, whsec_<base64>; 'streamproc webhooks secret' makes one.")
    rules: tuple[str, ...] = Field((), description="Rule ids it takes (empty: every rule).")
    severities: tuple[str, ...] = Field((), description="Severities it takes (empty: every severity).")
    timeout_s: float = Field(10.0, gt=0, description="Longest wait for one answer.")
    concurrency: int = Field(4, ge=1, description="Requests in flight at once.")

    def takes(self, alert: dict) -> bool:
        """Whether an alert record is for this endpoint: not held out, named (or no endpoint named)
        by its rule, and within the endpoint's rules and severities; a customer_erased record goes
        to every endpoint."""
        if alert.get("type") == "customer_erased":
            return True  # every CRM that may hold the customer erases them too
        named = alert.get("destinations") or []
        return (not alert.get("held_out") and (not named or self.name in named)
                and (not self.rules or alert.get("rule") in self.rules)
                and (not self.severities or alert.get("severity") in self.severities))


SCOPES = ("profiles:read", "aggregates:read", "customers:erase")


class ApiToken(BaseModel):
    """A bearer token of the HTTP API, stored as the SHA-256 of the token (``streamproc api token`` makes one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Who holds it (logged, never the token).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the token.")
    scopes: tuple[Literal["profiles:read", "aggregates:read", "customers:erase"], ...] = Field(
        description="profiles:read (one customer), aggregates:read (segments, models, rules), customers:erase.")


class Settings(BaseSettings):
    """All of streamproc's configuration (env var = ``STREAMPROC_`` + field name, upper case)."""

    model_config = SettingsConfigDict(env_prefix="STREAMPROC_", frozen=True, extra="ignore")

    kafka_url: str = Field("", description="Kafka bootstrap servers, e.g. kafka://host:9092 (comma-separated for several).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How to reach the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL).")
    kafka_sasl_username: str = Field("", description="SASL user name.")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates "
                                                            "(default: the system's).")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate, for brokers that require one (mTLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="The client certificate's key.")
    redis_url: str = Field("", description="Redis URL, e.g. redis://host:6379/0; redis://:PASSWORD@host:6379/0 or "
                                           "redis://USER:PASSWORD@host:6379/0 (AUTH, ACL users), rediss://... for TLS "
                                           "(certificates checked against the system's CAs).")
    app_id: str = Field("streamproc", description="Faust app id; also the Kafka consumer group.")
    topics_dir: Path = Field(DEFAULT_TOPICS_DIR, description="Folder holding topics.json and the JSON Schemas.")
    key_prefix: str = Field("sp", description="Prefix of every Redis key streamproc writes.")
    web_port: int = Field(6066, description="Port of the worker's web server (the API, /metrics, /livez, /readyz).")
    web_host: str = Field("127.0.0.1", description="Address the web server binds; 0.0.0.0 to serve other hosts "
                                                  "(docker-compose.yml does).")
    environment: Literal["production", "dev", "demo", "test"] = Field(
        "production", description="production: the worker refuses the development STREAMPROC_PII_SECRET; 'streamproc "
                                  "dev', 'demo' and 'bench' run their workers as dev, demo or test.")
    log_level: str = Field("info", description="Worker log level: debug, info, warning, error.")
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder holding Faust's data directory, one subfolder per app id "
                    "(default $XDG_STATE_HOME/streamproc, else ~/.local/state/streamproc).",
    )

    batch_size: int = Field(500, ge=1, description="Events handled per batch (one Redis round trip set each).")
    batch_within_s: float = Field(0.01, gt=0, description="Longest wait to fill a batch, seconds.")
    fetch_max_wait_ms: int = Field(50, ge=1, description="Longest time the broker may hold an empty fetch.")
    broker_session_timeout_s: float = Field(10.0, gt=0, description="Kafka consumer session timeout.")
    broker_rebalance_timeout_s: float = Field(10.0, gt=0, description="Kafka consumer rebalance timeout.")
    redis_timeout_s: float = Field(10.0, gt=0, description="Longest wait for one Redis pipeline.")

    base_currency: str = Field("EUR", description="Currency every amount is converted to.")
    fx_rates: dict[str, float] = Field(
        default_factory=lambda: {"EUR": 1.0, "USD": 0.92, "GBP": 1.17},
        description="Units of base currency per unit of each accepted currency (JSON object).",
    )
    max_clock_skew_s: float = Field(3600.0, ge=0, description="Event times further ahead of the clock are rejected.")
    min_event_time: datetime = Field(
        datetime(2000, 1, 1, tzinfo=timezone.utc), description="Event times before this are rejected (ISO-8601)."
    )
    pii_secret: SecretStr = Field(
        SecretStr(DEV_SECRET), description="HMAC secret for pseudonymised ids and personal data; set your own."
    )
    pii_key_version: int = Field(1, ge=1, description="Version written into every key (k<version>_...); bump on rotation.")
    allowed_lateness_s: float = Field(
        300.0, ge=0,
        description="An event older than the newest on its topic-partition by more than this is dead-lettered as late.",
    )
    watermark_delay_s: float = Field(
        0.0, ge=0,
        description="Event time the watermark trails the newest events by; raise it if producers send a partition's "
                    "events out of order by more than that (each event then waits as long before it is applied).",
    )
    idle_after_s: float = Field(
        0.5, ge=0,
        description="A topic-partition with nothing left to read and no record for this long stops holding the "
                    "watermark back.",
    )
    release_limit: int = Field(5000, ge=1, description="Most held events of one partition released in one batch; "
                                                       "the rest follow in the next.")
    tick_s: float = Field(0.5, gt=0, description="How often held events and due timers are released when no records arrive.")
    new_days: float = Field(14.0, gt=0, description="A customer is 'new' for this many days after first activity.")
    at_risk_days: float = Field(21.0, gt=0, description="Days of event-time inactivity after which a customer is at-risk.")
    churn_days: float = Field(45.0, gt=0, description="Days of event-time inactivity after which a customer is churned.")
    loyal_purchases: int = Field(5, ge=2, description="Purchases after which an active customer becomes loyal...")
    loyal_days: float = Field(60.0, ge=0, description="...provided their first activity is at least this many days old.")
    overdue_factor: float = Field(5.0, gt=1, description="A customer with no visit for this many times their usual "
                                                        "time between visits becomes at-risk (before at_risk_days).")
    overdue_sessions: int = Field(5, ge=2, description="Visits needed before a customer's usual time between visits "
                                                      "is trusted for the overdue rule.")
    overdue_min_days: float = Field(3.0, ge=0, description="The overdue rule never fires sooner than this many days.")
    unhappy_ratings: int = Field(1, ge=1, le=5, description="Latest satisfaction scores averaged for the 'unhappy' "
                                                           "at-risk rule.")
    unhappy_max: float = Field(0.25, ge=0, le=1, description="An active customer whose recent mean satisfaction (0-1) "
                                                            "is at or below this becomes at-risk (0.25: a rating of 2).")
    recover_margin: float = Field(0.2, ge=0, le=1, description="An unhappy at-risk customer is active again once their "
                                                              "recent mean exceeds unhappy_max by this much.")
    session_gap_min: float = Field(30.0, gt=0, description="Minutes without a click that end a clickstream session.")
    cart_abandon_min: float = Field(
        60.0, ge=0, description="Minutes after a session's last click within which a purchase saves its cart from "
                                "counting as abandoned.")
    rescore_days: float = Field(7.0, gt=0, description="Days of event time after which a quiet customer's RFM, value "
                                                       "and cluster are scored again; once churned, each time the silence since the last activity doubles.")
    ltv_horizon_days: float = Field(90.0, gt=0, description="Horizon of expected purchases and CLV, in days.")
    ltv_refit_days: float = Field(7.0, gt=0, description="Days of event time between fits of the population's "
                                                         "lifetime-value parameters and cluster model.")
    segment_margin: float = Field(0.02, ge=0, le=0.1, description="Hysteresis of RFM scores and value tiers, in "
                                                                  "quantile points beyond a cut point.")
    churn_label_days: float = Field(30.0, gt=0, description="A scored customer with no activity for this many days "
                                                            "after the score is labelled churned; retained if active sooner.")
    snapshot_every_days: float = Field(3.0, gt=0, description="At most one churn snapshot (example to be) per customer "
                                                              "per this many days of event time.")
    model_publish_examples: int = Field(200, ge=1, description="The learner publishes a new model version after this "
                                                               "many new examples (or after model_publish_s).")
    model_publish_s: float = Field(5.0, gt=0, description="The learner publishes a new model version after this many "
                                                         "seconds with any new example.")
    clusters: int = Field(5, ge=2, le=20, description="Number of behaviour clusters.")
    webhooks: tuple[WebhookEndpoint, ...] = Field(
        (), description="CRM webhook endpoints, a JSON list of objects with name, url, secret (whsec_...), and "
                        "optionally rules, severities, timeout_s and concurrency (docs/webhooks.md).")
    webhook_retry_s: tuple[float, ...] = Field(
        (0, 5, 300, 1800, 7200, 18000, 36000, 36000),
        description="Delay before each delivery attempt of an alert, seconds (the first is the first attempt's); "
                    "after the last the alert goes to the webhook dead letters ('streamproc webhooks dead').")
    webhook_jitter: float = Field(0.2, ge=0, le=1, description="Each retry delay varies by up to this fraction.")
    webhooks_in_worker: bool = Field(True, description="Workers deliver webhooks too (in their own consumer group); "
                                                      "false: only 'streamproc webhooks run' processes do.")
    erased_events: Literal["suppress", "new_profile"] = Field(
        "suppress", description="Events of an erased customer that arrive after the erasure: suppress (dropped and "
                                "counted; a hash of the key is kept to know them) or new_profile (they start anew).")
    api_reads_per_s: float = Field(
        200.0, ge=0, description="Most profile reads (GET /v1/customers/{id}) a worker serves a second; more get 429 "
                                 "with Retry-After. The reads run in the worker's event loop: unbounded, 1,366 a second "
                                 "cut ingestion to 5% in 'streamproc bench --api-reads'. 0: no limit.")
    api_tokens: tuple[ApiToken, ...] = Field(
        (), description="Bearer tokens of the HTTP API: a JSON list of {name, sha256, scopes} "
                        "('streamproc api token' makes one); without any, every /v1 request gets 401.")
    rules_file: Path | None = Field(
        None, description="The trigger rules file (YAML or JSON; see 'streamproc rules check'); default: the rules "
                          "that ship with streamproc (streamproc/decisions/default_rules.yaml). A version published "
                          "with 'streamproc rules publish' replaces it on every worker.")
    top_spend_fraction: float = Field(0.2, gt=0, le=1, description="Share of customers by spend counted as top spenders.")
    min_population: int = Field(10, ge=1, description="Customers with spend needed before spend ranks are used.")
    dedupe_window: int = Field(64, ge=1, description="Event ids remembered per customer to drop resent events.")
    offers: bool = Field(True, description="Learn item co-occurrence from sessions and orders and offer each customer "
                                           "the items they are likeliest to take next (false: neither).")
    offers_per_customer: int = Field(3, ge=1, le=50, description="Offers a profile read (API, 'streamproc profile') "
                                                                  "and an alert carry.")
    item_half_life_days: float = Field(30.0, ge=14, description="Half-life, in event-time days, of what a basket "
                                                                 "teaches the item model (tastes move); at least 14, so "
                                                                 "that event times 1981-2058 weigh exactly.")
    offer_repurchase: tuple[str, ...] = Field((), description="Glob patterns of SKUs customers normally buy again "
                                                              "(JSON list, e.g. [\"FOOD-*\"]): offered though bought.")

    def rules(self) -> Rules:
        """The thresholds the decision functions read."""
        return Rules(
            new_for=timedelta(days=self.new_days),
            at_risk_after=timedelta(days=self.at_risk_days),
            churned_after=timedelta(days=self.churn_days),
            loyal_purchases=self.loyal_purchases,
            loyal_after=timedelta(days=self.loyal_days),
            overdue_factor=self.overdue_factor,
            overdue_sessions=self.overdue_sessions,
            overdue_min=timedelta(days=self.overdue_min_days),
            unhappy_ratings=self.unhappy_ratings,
            unhappy_max=self.unhappy_max,
            recover_margin=self.recover_margin,
            dedupe_window=self.dedupe_window,
            sessions=SessionRules(timedelta(minutes=self.session_gap_min), timedelta(minutes=self.cart_abandon_min)),
            rescore_every=timedelta(days=self.rescore_days),
            ltv_horizon_days=self.ltv_horizon_days,
            churn_label_after=timedelta(days=self.churn_label_days),
            snapshot_every=timedelta(days=self.snapshot_every_days),
            triggers=rulefile.load(self.rules_file),
            items=ItemParams(half_life=timedelta(days=self.item_half_life_days)) if self.offers else None,
            offers=self.offers_per_customer, repurchase=self.offer_repurchase,
        )

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL and SASL_SSL (None for the plaintext protocols)."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        ctx = ssl.create_default_context(cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None)
        if self.kafka_ssl_certfile:
            ctx.load_cert_chain(str(self.kafka_ssl_certfile), str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None)
        return ctx

    def kafka_security(self) -> dict[str, object]:
        """Keyword arguments of every aiokafka client for the configured protocol (empty for PLAINTEXT)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        out: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            out |= {"sasl_mechanism": self.kafka_sasl_mechanism, "sasl_plain_username": self.kafka_sasl_username,
                    "sasl_plain_password": self.kafka_sasl_password.get_secret_value()}
        if (ctx := self.kafka_ssl_context()) is not None:
            out["ssl_context"] = ctx
        return out

    def pseudonymiser(self) -> Pseudonymiser:
        return Pseudonymiser(self.pii_secret.get_secret_value().encode(), self.pii_key_version)

    def decoder(self, contracts: Contracts, *, history: bool = False) -> Decoder:
        """The decoder of the input topics: contracts, currencies, keys and time bounds from configuration.
        A ``history`` (a file read by a tool) has no bound in the future: it may be dated after now."""
        bounds = TimeBounds(self.min_event_time, float("inf") if history else self.max_clock_skew_s)
        return Decoder(contracts.validators, self.fx_rates, self.base_currency, self.pseudonymiser(), bounds)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
