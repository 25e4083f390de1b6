"""Typed configuration, read from ``ESCALATIONS_*`` environment variables.

Nothing is read at import time: call :func:`get_settings` (cached) or build
``Settings(...)`` directly in tests.
"""

import json
from functools import lru_cache
from typing import Annotated, Literal

import limits
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.core.models import Role

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"
MIN_JWT_SECRET_LENGTH = 32  # HS256 wants a key at least as long as its 256-bit hash
#: The stream cookie's ``aud`` (shared.auth.tokens.STREAM_AUDIENCE); bearer tokens may not use it.
STREAM_AUDIENCE = "escalations-stream"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESCALATIONS_", extra="ignore")

    dev_mode: bool = False
    #: One-click sign-in as the demo users (``POST /api/v1/demo/sign-in``); ``escalations up`` only.
    demo_sign_in: bool = False
    database_url: str = "sqlite:///./escalations.db"
    #: PostgreSQL: let psycopg prepare a statement on the server after five runs on a
    #: connection. Off by default: behind PgBouncer in transaction mode (before 1.22,
    #: or without ``max_prepared_statements``) the names clash across server connections.
    database_prepared_statements: bool = False
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis Sentinel: ``host:port`` of each sentinel (comma-separated or a JSON list).
    #: When set, the master is found through them and ``redis_url`` gives only the
    #: database, the master's credentials and TLS (its host and port are not used).
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str = ""
    jwt_secret: str = ""
    #: Secrets still accepted when verifying (never used to sign): a JSON list or
    #: comma-separated. Put the old secret here while rotating to a new ``jwt_secret``.
    jwt_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: When set, bearer tokens must carry this ``iss`` / ``aud`` (``escalations token`` adds them).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: float = Field(default=10.0, ge=0, le=300)
    #: A token whose ``exp`` is further than this from now (or from its ``iat``) is refused.
    jwt_max_lifetime_seconds: int = Field(default=86_400, gt=0)

    claim_lock_enabled: bool = True
    claim_lock_ttl_seconds: float = Field(default=10.0, gt=0, le=300)

    assessor: Literal["heuristic", "openai"] = "heuristic"
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str = ""
    llm_timeout_seconds: float = Field(default=30.0, gt=0)
    assessment_job_timeout_seconds: int = Field(default=120, gt=0)
    assessment_retries: int = Field(default=3, ge=0, le=10)
    #: Back-off before each retry; the last value repeats when there are more retries.
    assessment_retry_intervals_seconds: list[int] = Field(default=[5, 20, 60], min_length=1)
    assessment_max_attempts: int = Field(default=8, ge=1)
    maintenance_interval_seconds: float = Field(default=5.0, gt=0)

    sse_ping_seconds: float = Field(default=15.0, gt=0)
    sse_send_timeout_seconds: float = Field(default=30.0, gt=0)
    sse_queue_size: int = Field(default=256, ge=1)
    event_replay_limit: int = Field(default=10_000, ge=0)
    #: Replay reads at most this much stored event JSON per query (always one event at least),
    #: and at most this many replay queries run at once per API process.
    event_replay_batch_bytes: int = Field(default=1024 * 1024, ge=1024)
    event_replay_concurrency: int = Field(default=4, ge=1)
    stream_cookie_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    stream_cookie_secure: bool = False

    claim_sla_seconds: int = Field(default=300, gt=0)
    #: How long a replica keeps an org's redaction settings before reading them again.
    redaction_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    #: A create's time for the org's own redaction patterns, all fields together.
    redaction_budget_seconds: float = Field(default=0.25, gt=0, le=5)
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics_bind_host: str = "127.0.0.1"
    #: When set, ``GET /metrics`` needs ``Authorization: Bearer <it>``; unset, loopback only.
    metrics_token: str = ""
    #: ``/docs``, ``/redoc`` and ``/openapi.json`` (off on a public port by default).
    api_docs: bool = False
    #: Request line + headers larger than this get 431 (``escalations api``'s server).
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    #: A connection must deliver a complete request head within this, else 408.
    header_timeout_seconds: float = Field(default=10.0, gt=0)

    #: Abuse limits, counted in Redis across replicas (``shared/ratelimit.py``). Rates
    #: are in the ``limits`` package's notation ("30/minute", "5/2 seconds").
    rate_limits_enabled: bool = True
    rate_limit_creates: str = "30/minute"
    rate_limit_claims: str = "60/minute"
    rate_limit_stream_opens: str = "30/minute"
    rate_limit_auth_failures: str = "20/minute"
    #: ``POST /webhooks/{id}/test`` and ``…/redeliver`` together, per org.
    rate_limit_webhook_sends: str = "20/minute"
    max_streams_per_user: int = Field(default=24, ge=1)
    #: A replica refreshes its open streams' registry entries this often; an entry
    #: not refreshed for ``stream_slot_ttl_seconds`` (its replica died) stops counting.
    stream_slot_refresh_seconds: float = Field(default=10.0, gt=0)
    stream_slot_ttl_seconds: float = Field(default=30.0, gt=0)
    #: A senior or admin counts as present this long after ``POST /presence/heartbeat``.
    presence_heartbeat_seconds: float = Field(default=60.0, gt=0, le=86_400)
    #: A caller's row in ``people`` (last seen, name, role) is written at most this
    #: often per person and replica; a changed name or role is written at once.
    people_seen_write_seconds: float = Field(default=300.0, ge=0, le=86_400)
    #: Teams an org may have (``POST /teams`` beyond it: 409 ``team_limit_reached``).
    max_teams_per_org: int = Field(default=100, ge=1, le=10_000)

    #: An OIDC identity provider whose tokens are accepted beside the service's own
    #: (docs/identity.md). ``oidc_issuer`` turns it on.
    oidc_issuer: str | None = None
    #: The ``aud`` the provider's bearer tokens must carry (default: ``oidc_client_id``).
    oidc_audience: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid profile email"
    oidc_display_name: str = "SSO"
    #: Where roles are read: a claim name or a dotted path (``realm_access.roles``).
    oidc_role_claim: str = "roles"
    #: JSON object from provider group or role names to roles; the highest mapped role wins.
    oidc_role_map: dict[str, Role] = Field(default_factory=dict)
    #: The role when nothing maps; empty: such a user is refused (403 ``no_role``).
    oidc_default_role: Role | None = Role.engineer
    #: The org from this claim, or ``oidc_org`` for everyone (exactly one of the two).
    oidc_org_claim: str | None = None
    oidc_org: str | None = None
    #: A token naming a key not in the cached key set refetches it at most this often.
    oidc_jwks_refetch_seconds: float = Field(default=30.0, ge=1)
    #: Cached keys are refreshed (in the request that finds them older) after this.
    oidc_jwks_max_age_seconds: float = Field(default=3600.0, ge=30)
    oidc_http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: The console's own token after a sign-in at the provider lives this long; the
    #: console renews it (the provider is asked again) while the session lasts.
    oidc_session_token_seconds: int = Field(default=900, ge=10, le=86_400)
    oidc_session_max_seconds: int = Field(default=12 * 3600, ge=60)
    #: A verified API key is trusted this long per process before it is read again, so a
    #: revoked or expired key is refused on every replica within it.
    api_key_cache_seconds: float = Field(default=0.5, ge=0, le=1)

    #: Where the console is reached from outside: links in notifications (Slack messages).
    public_url: str = "http://localhost:8000"
    #: Webhooks may target loopback, private, link-local and other non-public addresses.
    webhook_allow_private_networks: bool = False
    #: Back-off before each retry of a webhook delivery; one try more than there are values.
    webhook_retry_intervals_seconds: list[float] = Field(
        default=[5, 30, 120, 600, 1800], min_length=1, max_length=20
    )
    #: One delivery try, from DNS resolution to the last byte read, ends within this.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    #: Subscriptions one org may have (``POST /webhooks`` past it: 409 ``quota_exceeded``).
    max_webhooks_per_org: int = Field(default=20, ge=1, le=10_000)
    #: Tries one notifications worker runs at once (threads waiting on receivers).
    webhook_concurrency: int = Field(default=32, ge=1, le=1024)
    #: Tries in flight (queued in RQ or being sent) across every worker, per org and per
    #: receiver (``host:port``); the dispatcher enqueues no more (``docs/decisions.md``).
    webhook_max_in_flight_per_org: int = Field(default=8, ge=1, le=10_000)
    webhook_max_in_flight_per_host: int = Field(default=16, ge=1, le=10_000)
    #: Circuit breaker: a webhook whose tries have all failed, at least this many in a row
    #: over at least ``webhook_circuit_min_seconds``, is paused (no try) for
    #: ``webhook_circuit_pause_seconds``, doubled at each re-opening up to the maximum.
    webhook_circuit_failures: int = Field(default=10, ge=1, le=10_000)
    webhook_circuit_min_seconds: float = Field(default=30.0, ge=0, le=86_400)
    webhook_circuit_pause_seconds: float = Field(default=30.0, gt=0, le=86_400)
    webhook_circuit_max_pause_seconds: float = Field(default=3600.0, gt=0, le=7 * 86_400)

    #: The Slack app's signing secret; without it the interactivity endpoint answers 404.
    slack_signing_secret: str = Field(default="", repr=False)
    #: Slack's Web API (tests point it at a local stub).
    slack_api_url: str = "https://slack.com/api/"
    #: Retention defaults for orgs without settings of their own (days; 0 keeps for ever).
    retention_handoff_content_days: int = Field(default=0, ge=0, le=36_500)
    retention_event_days: int = Field(default=0, ge=0, le=36_500)
    retention_delivery_days: int = Field(default=0, ge=0, le=36_500)

    @field_validator(
        "rate_limit_creates",
        "rate_limit_claims",
        "rate_limit_stream_opens",
        "rate_limit_auth_failures",
        "rate_limit_webhook_sends",
    )
    @classmethod
    def _one_rate(cls, value: str) -> str:
        try:
            items = limits.parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a rate such as '30/minute' or '5/2 seconds'"
            ) from exc
        if len(items) != 1 or items[0].amount < 1:
            raise ValueError(f"{value!r} must be exactly one rate of at least 1 per period")
        return value

    @field_validator("webhook_retry_intervals_seconds")
    @classmethod
    def _positive_intervals(cls, value: list[float]) -> list[float]:
        if any(interval <= 0 or interval > 86_400 for interval in value):
            raise ValueError("each retry interval must be above 0 and at most 86400 seconds")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _slots_refreshed_before_expiry(self) -> "Settings":
        if self.stream_slot_refresh_seconds * 2 > self.stream_slot_ttl_seconds:
            raise ValueError(
                "ESCALATIONS_STREAM_SLOT_TTL_SECONDS must be at least twice"
                " ESCALATIONS_STREAM_SLOT_REFRESH_SECONDS (one late refresh must drop no stream)"
            )
        return self

    @field_validator("jwt_previous_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            value = [str(part).strip() for part in value if str(part).strip()]
            for address in value:
                host, _, port = address.rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError(f"a sentinel is host:port, not {address!r}")
        return value

    @field_validator(
        "jwt_issuer",
        "jwt_audience",
        "oidc_issuer",
        "oidc_audience",
        "oidc_client_id",
        "oidc_org_claim",
        "oidc_org",
        "oidc_default_role",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_unsafe_jwt_settings(self) -> "Settings":
        for secret in self.jwt_previous_secrets:
            if len(secret) < MIN_JWT_SECRET_LENGTH or secret == DEV_JWT_SECRET:
                raise ValueError(
                    "each of ESCALATIONS_JWT_PREVIOUS_SECRETS must be at least "
                    f"{MIN_JWT_SECRET_LENGTH} characters (and not the dev secret)"
                )
        if self.jwt_audience == STREAM_AUDIENCE:
            raise ValueError(f"ESCALATIONS_JWT_AUDIENCE may not be {STREAM_AUDIENCE!r}")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> "Settings":
        if self.dev_mode and not self.jwt_secret:
            self.jwt_secret = DEV_JWT_SECRET
        if not self.dev_mode and self.jwt_secret in ("", DEV_JWT_SECRET):
            raise ValueError(
                "ESCALATIONS_JWT_SECRET must be set (or ESCALATIONS_DEV_MODE=true for local use)"
            )
        if len(self.jwt_secret) < MIN_JWT_SECRET_LENGTH:
            raise ValueError(
                f"ESCALATIONS_JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters"
            )
        return self

    @model_validator(mode="after")
    def _identity_provider_complete(self) -> "Settings":
        if not self.oidc_issuer:
            return self
        if (self.oidc_org_claim is None) == (self.oidc_org is None):
            raise ValueError(
                "with ESCALATIONS_OIDC_ISSUER, set exactly one of ESCALATIONS_OIDC_ORG_CLAIM"
                " and ESCALATIONS_OIDC_ORG"
            )
        if not (self.oidc_audience or self.oidc_client_id):
            raise ValueError(
                "with ESCALATIONS_OIDC_ISSUER, set ESCALATIONS_OIDC_AUDIENCE or"
                " ESCALATIONS_OIDC_CLIENT_ID (the audience the provider's tokens carry)"
            )
        if self.oidc_session_token_seconds > self.jwt_max_lifetime_seconds:
            raise ValueError(
                "ESCALATIONS_OIDC_SESSION_TOKEN_SECONDS may not exceed"
                " ESCALATIONS_JWT_MAX_LIFETIME_SECONDS (its tokens would be refused)"
            )
        if self.jwt_issuer == self.oidc_issuer:
            raise ValueError("ESCALATIONS_JWT_ISSUER may not be the identity provider's issuer")
        return self

    @property
    def oidc_expected_audience(self) -> str | None:
        return self.oidc_audience or self.oidc_client_id


@lru_cache
def get_settings() -> Settings:
    return Settings()
