"""One typed settings object, built once at the edge from the environment.

Nothing else in the project reads `os.environ`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.errors import ConfigError
from adapters.pipeline_names import PERSONALIZATION

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROMPTS_DIR = ROOT / "prompts"


class Settings(BaseSettings):
    """Runtime configuration. Field names map to the upper-case variables in DESIGN.md."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Broker, results, ledger. Unset: an embedded Valkey server is started.
    redis_url: str | None = None

    # Model gateway. With none of these set the embedded dev gateway serves.
    ai_gateway_url: str | None = None
    cf_account_id: str | None = None
    ai_gateway_id: str = "wandstore-ai"
    ai_gateway_token: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    gateway_timeout_s: float = Field(default=60.0, gt=0)
    # Pipelines whose model calls ask AI Gateway not to log their payload
    # (`cf-aig-collect-log-payload: false`): a shopper's context stays out of the gateway's logs.
    gateway_no_log_payload: list[str] = Field(default_factory=lambda: [PERSONALIZATION])
    # The Cloudflare API (AI Gateway's log feedback: a reviewer's rejections and edits). Feedback
    # is sent only when the token is set; the base URL points elsewhere in tests (the dev gateway).
    cf_api_token: SecretStr | None = None
    cf_api_base_url: str = "https://api.cloudflare.com/client/v4"

    # Object store. R2 when credentials are set, the local folder otherwise.
    r2_access_key_id: SecretStr | None = None
    r2_secret_access_key: SecretStr | None = None
    r2_endpoint_url: str | None = None
    r2_themes_bucket: str = "wandstore-themes"
    # Backups hold token hashes and signing secrets: their own bucket, never the themes one.
    r2_backups_bucket: str = "wandstore-backups"
    local_store_dir: Path = Path("./var/objects")
    local_backup_dir: Path = Path("./var/backups")
    r2_timeout_s: float = Field(default=30.0, gt=0)  # per request; no retries inside: the job retries

    prompts_dir: Path = DEFAULT_PROMPTS_DIR
    # How long a worker trusts the prompt labels it read from Redis (a label move's delay).
    prompt_labels_ttl_s: float = Field(default=2.0, ge=0, le=300)
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    # Traces over OTLP/HTTP to `{endpoint}/v1/traces` (adapters/telemetry.py); unset: none, at no cost.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "wandstore-agents"

    # Accounting (issue 3 fills these in).
    daily_budget_usd: float = Field(default=50.0, ge=0)
    job_cap_usd: float = Field(default=1.0, ge=0)
    price_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)
    result_cache_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # False: no answer from the result cache or AI Gateway's cache (benchmarks, debugging).
    caches_enabled: bool = True

    # Pacing to provider limits (adapters/rate_limiter.py): per model, requests and tokens per
    # minute, as JSON `{"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}` (bare or "openai/..." names;
    # a prompt's front matter may set them for its model, these win). Unset: not paced.
    model_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    # The share of each model's budget kept for the interactive lane (personalization): batch
    # calls use at most the rest.
    model_limit_interactive_share: float = Field(default=0.2, ge=0, le=0.9)
    # How far ahead of the steady rate the fleet may start calls (seconds of the budget).
    model_limit_burst_s: float = Field(default=1.0, gt=0, le=60)
    # Longest a batch call waits for its slot; past it the call goes to the prompt's fallback
    # model, or the job is retried when a slot is free. Interactive calls wait until their deadline.
    model_limit_max_wait_s: float = Field(default=300.0, ge=0, le=3600)
    # A prompt's primary model is down after this many 5xx or connection errors (fleet-wide) within
    # the window; calls then go straight to the prompt's `fallback_model` for MODEL_DOWN_S.
    model_down_after: int = Field(default=5, ge=1, le=1000)
    model_down_window_s: float = Field(default=10.0, gt=0, le=3600)
    model_down_s: float = Field(default=30.0, gt=0, le=3600)

    # Shopper personalization (the interactive lane).
    # An idle `interactive` consumer waits for a push on its queue at most this long
    # (pipelines/fastlane.py); it polls every `interactive_poll_ms` when it cannot wait.
    interactive_wake_ms: int = Field(default=100, ge=1, le=10_000)
    interactive_poll_ms: int = Field(default=5, ge=1, le=1000)
    personalization_ttl_s: int = Field(default=3600, ge=60)  # cohort cache entry; `expires_at`
    personalization_fallback_ttl_s: int = Field(default=120, ge=10)  # `expires_at` of a fallback
    personalization_deadline_ms: int = Field(default=2500, ge=50, le=60_000)  # when `deadline_ms` is unset
    # A batch-only worker's place on the CPU (pipelines/lanes.py): its scheduling policy, and
    # how many CPUs it leaves to the interactive lane while one runs on the same machine (0: never).
    batch_cpu_policy: Literal["idle", "batch", "normal"] = "idle"
    interactive_reserved_cpus: int = Field(default=1, ge=0, le=4096)
    # Threads per worker process for the object-store and draft writes a job makes after its
    # model call (pipelines/services.py): apart from the event loop's default executor, where
    # litellm sets up each call, so new calls never queue behind finished jobs' writes. Sized
    # for R2, where a copy job's writes wait on three requests (decision 0028).
    write_threads: int = Field(default=16, ge=1, le=64)
    # After a model call of at least `finish_turn_after_ms`, at most this many jobs per event loop
    # finish their answers at once, in arrival order, so a wave of answers does not come back
    # as a wave of calls (decision 0033). 0: off.
    finish_turns: int = Field(default=8, ge=0, le=1024)
    finish_turn_after_ms: float = Field(default=1000.0, ge=0)
    catalog_snapshot_ttl_s: float = Field(default=30.0, ge=0)  # how long a worker trusts a snapshot
    callback_timeout_s: float = Field(default=2.0, gt=0)
    callback_max_attempts: int = Field(default=3, ge=1, le=10)
    callback_backoff_ms: int = Field(default=200, ge=1)
    callback_store_concurrency: int = Field(default=32, ge=1, le=10_000)  # one store's, per process

    # The worker and the API refuse a Redis that would lose tokens, budgets and queued jobs
    # (no AOF/RDB, or a maxmemory policy that evicts). False only where losing them is fine.
    redis_require_durable: bool = True

    # Broker (docs/decisions/0019-broker-maintenance-on-a-timer.md). Every worker process runs the
    # broker's maintenance every BROKER_MAINTENANCE_INTERVAL_MS (5 s): it is the process's heartbeat,
    # and it requeues the messages of workers silent for BROKER_HEARTBEAT_TIMEOUT_MS (15 s): a dead
    # worker's jobs run again within about 20 s. The timeout must be at least 3 intervals, so a live
    # worker is never declared dead for one late beat. Dramatiq's own 1-in-N-per-million maintenance
    # on broker commands is then not needed (0).
    broker_heartbeat_timeout_ms: int = Field(default=15_000, ge=1000)
    broker_maintenance_interval_ms: int = Field(default=5_000, ge=100, le=600_000)
    broker_maintenance_chance: int = Field(default=0, ge=0, le=1_000_000)
    # An open job (queued, running, retrying) unwritten this long whose message is in no queue, delay
    # queue or worker's hands is reported `lost` (pipelines/lost_jobs.py).
    jobs_lost_after_s: float = Field(default=120.0, ge=1)
    # Decided copy drafts (rejected, set aside, replaced) older than this are removed, row and
    # body (pipelines/drafts_retention.py); pending and live ones are kept. 0: keep every draft.
    draft_retention_days: float = Field(default=90.0, ge=0)

    # Fairness between stores on the batch lane (pipelines/fair.py, docs/operations in
    # docs/processes.md): jobs wait in per-store lists and move onto `batch` round-robin while
    # fewer than `fair_window` are queued and not started. False: first in, first out.
    fair_dispatch: bool = True
    fair_window: int = Field(default=128, ge=1, le=100_000)
    fair_tick_ms: int = Field(default=50, ge=5, le=5000)
    fair_lease_ms: int = Field(default=2000, ge=200, le=60_000)
    fair_stale_s: int = Field(default=60, ge=1, le=3600)  # a queued job never seen starting stops counting

    # Worker metrics.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None

    # HTTP API (the `web` process) and webhooks.
    ops_api_token: SecretStr | None = None
    api_rate_limit: int = Field(default=600, ge=1)  # requests per store per window
    api_rate_window_s: int = Field(default=60, ge=1)
    api_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # catalog uploads; no route more
    api_generation_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # POST .../generations
    # Theme preview share links (adapters/share_links.py): signed with this secret (comma-separated:
    # the first signs, any verifies); unset, a random one kept in Redis, shared by every API process.
    share_link_secret: SecretStr | None = None
    share_link_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)  # when the request names none
    share_link_max_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    # Isolation (docs/api-isolation.md): how long a request waits for each dependency before a 503,
    # and how long a client may take to send its headers and its body.
    api_redis_timeout_s: float = Field(default=3.0, gt=0)
    api_store_timeout_s: float = Field(default=5.0, gt=0)
    api_store_concurrency: int = Field(default=16, ge=1, le=1024)
    api_header_timeout_s: float = Field(default=10.0, gt=0)
    api_body_timeout_s: float = Field(default=30.0, gt=0)
    api_health_interval_s: float = Field(default=5.0, gt=0)
    # /healthz reports the local store down below this much free disk (a write of a few bytes
    # still succeeds on a disk too full to publish anything).
    local_store_min_free_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    catalog_export_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    catalog_batch_max_products: int = Field(default=20_000, ge=1)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # One store's webhook deliveries in flight at once: a slow receiver slows only its own store.
    webhook_store_concurrency: int = Field(default=4, ge=1, le=1000)
    webhook_max_attempts: int = Field(default=6, ge=1, le=7)
    webhook_backoff_ms: int = Field(default=1000, ge=1)
    webhook_allow_private_hosts: bool = False  # callbacks to loopback/private addresses (dev, tests)

    # Stores and catalogs (docs/stores-and-catalogs.md). The Shopify Admin API version is pinned
    # (the tests validate every query against its published schema); its base URL defaults to
    # `https://{shop domain}` (tests and proxies point it elsewhere).
    shopify_api_version: str = Field(default="2025-01", pattern=r"^\d{4}-(01|04|07|10)$")
    shopify_api_base_url: str | None = None
    shopify_timeout_s: float = Field(default=30.0, gt=0)
    shopify_page_size: int = Field(default=25, ge=1, le=250)  # products per catalog page (cost <= 1000)
    # The app's secret Shopify signs webhooks with (`X-Shopify-Hmac-Sha256`).
    shopify_webhook_secret: SecretStr | None = None
    # Encrypts the stored Admin API tokens: a Fernet key (32 random bytes, url-safe base64); several,
    # comma-separated, while rotating (the first encrypts, any decrypts). Unset with the embedded
    # Redis, a key file is made next to it (the demo); with REDIS_URL it must be set.
    store_secrets_key: SecretStr | None = None
    # Product webhooks: edits reach the snapshot in batches this far apart, and a product's copy is
    # regenerated once its copy fields have stopped changing for this long (one generation a burst).
    catalog_apply_delay_ms: int = Field(default=1000, ge=0, le=600_000)
    copy_regen_debounce_s: float = Field(default=30.0, ge=0, le=86_400)

    @field_validator("model_limits")
    @classmethod
    def _model_limits(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for model, spec in v.items():
            if not isinstance(spec, dict) or not spec or set(spec) - {"rpm", "tpm"}:
                raise ValueError(f'{model!r} must map to {{"rpm": N, "tpm": N}} (one or both)')
            if any(not isinstance(n, int) or n < 1 for n in spec.values()):
                raise ValueError(f"{model!r}: rpm and tpm must be positive integers")
        return v

    @model_validator(mode="after")
    def _heartbeat_outlasts_beats(self) -> Settings:
        if self.broker_heartbeat_timeout_ms < 3 * self.broker_maintenance_interval_ms:
            raise ValueError(
                f"BROKER_HEARTBEAT_TIMEOUT_MS ({self.broker_heartbeat_timeout_ms}) must be at least 3 x "
                f"BROKER_MAINTENANCE_INTERVAL_MS ({self.broker_maintenance_interval_ms}): a worker "
                "heartbeats once per interval, and one late beat must not make it dead"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str | None) -> str | None:
        if v and not re.match(r"^(redis|rediss|unix)://", v):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v or None

    @field_validator("ai_gateway_url", "r2_endpoint_url", "shopify_api_base_url", "cf_api_base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s):// URL")
        return v.rstrip("/") if v else None

    @field_validator("cf_account_id")
    @classmethod
    def _account_id(cls, v: str | None) -> str | None:
        if v and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError("must be letters, digits, '-' or '_' (a Cloudflare account id)")
        return v or None

    # --- derived -------------------------------------------------------------

    @property
    def gateway_base_url(self) -> str | None:
        """The AI Gateway base URL, or None when the dev gateway should be used."""
        if self.ai_gateway_url:
            return self.ai_gateway_url
        if self.cf_account_id:
            return f"https://gateway.ai.cloudflare.com/v1/{self.cf_account_id}/{self.ai_gateway_id}"
        return None

    @property
    def r2_configured(self) -> bool:
        return bool(self.r2_access_key_id and self.r2_secret_access_key)

    @property
    def r2_endpoint(self) -> str:
        if self.r2_endpoint_url:
            return self.r2_endpoint_url
        if self.cf_account_id:
            return f"https://{self.cf_account_id}.r2.cloudflarestorage.com"
        raise ConfigError("R2 credentials are set but no endpoint: set R2_ENDPOINT_URL or CF_ACCOUNT_ID")

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log scrubber."""
        out = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        if not err["loc"]:  # a rule across settings: its message names them
            parts.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        parts.append(f"{str(err['loc'][0]).upper()}: {err['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; a bad value raises `ConfigError` naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return load_settings()
