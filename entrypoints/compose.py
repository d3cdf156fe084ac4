"""The composition root: settings, then Redis, the object store, the gateway client, ledger, result cache.

The worker module, the HTTP API and the CLI all build what they run with here, and nothing
anywhere connects, starts a server or builds a broker when a module is imported.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dramatiq
import redis
from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker

from adapters.ledger import Ledger
from adapters.logs import configure_logging, get_logger, register_private_path, register_secrets
from adapters.prompt_labels import LabelEpoch, PromptLabels
from adapters.rate_limiter import Limit, ModelLimiter
from adapters.redis_conn import AsyncRedis, get_async_redis, get_redis, resolve_url
from adapters.redis_durability import require_durable
from adapters.settings import Settings, get_settings
from adapters.store import ObjectStore, open_store
from adapters.telemetry import setup_tracing
from adapters.tokens import TokenStore
from agents.finish_turns import FinishTurns
from agents.gateway import GatewayClient, GatewayConfig
from agents.prompts import PromptRegistry
from agents.rollout import LabelResolver
from agents.runtime import AgentRuntime
from agents.schemas import OUTPUT_MODELS
from entrypoints import devmode
from entrypoints.api.bulkhead import Pools
from entrypoints.api.context import ApiContext
from entrypoints.api.idempotency import Idempotency
from entrypoints.api.limits import RateLimiter
from pipelines import services as job_services
from pipelines.accounting import LedgerSink
from pipelines.actors import declare_actors
from pipelines.batches import Batches
from pipelines.broker import build_broker
from pipelines.dead_letters import MessageEncoder
from pipelines.fair_dispatch import FairConfig, FairDispatch
from pipelines.result_cache import ResultCache
from pipelines.services import Services
from pipelines.status import JobStatus

log = get_logger("entrypoints.compose")
_lock = threading.Lock()
_broker: RedisBroker | None = None


def configure(settings: Settings) -> None:
    """Logging and secret scrubbing, before anything logs."""
    configure_logging(settings.log_level, settings.log_format)
    register_secrets(settings.secret_values())
    # Job errors reach tenants: they name the setting, never this host's folders.
    register_private_path(str(settings.local_store_dir.expanduser().resolve()), "LOCAL_STORE_DIR")
    register_private_path(str(settings.local_backup_dir.expanduser().resolve()), "LOCAL_BACKUP_DIR")
    # Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing is installed otherwise.
    setup_tracing(settings.otel_exporter_otlp_endpoint, settings.otel_service_name)


def redis_client(settings: Settings) -> redis.Redis:
    """The process's Redis client: REDIS_URL, or the embedded Valkey."""
    return get_redis(resolve_url(settings))


def async_redis(settings: Settings) -> AsyncRedis:
    """The process's asyncio Redis clients (one per event loop), for coroutines."""
    return get_async_redis(resolve_url(settings))


def check_redis(settings: Settings) -> None:
    """Refuse to start on a Redis that would lose state (the worker and the API call this at start)."""
    for problem in require_durable(redis_client(settings), required=settings.redis_require_durable):
        log.warning("redis_not_durable", problem=problem, opted_out="REDIS_REQUIRE_DURABLE=false")


def gateway_config(settings: Settings) -> GatewayConfig:
    """The configured AI Gateway (the dev gateway in a development install with none configured)."""
    settings = devmode.with_gateway(settings)
    assert settings.gateway_base_url is not None
    secret = lambda s: s.get_secret_value() if s else None  # noqa: E731
    return GatewayConfig(
        base_url=settings.gateway_base_url,
        token=secret(settings.ai_gateway_token),
        openai_key=secret(settings.openai_api_key),
        anthropic_key=secret(settings.anthropic_api_key),
        timeout_s=settings.gateway_timeout_s,
        skip_cache=not settings.caches_enabled,
        price_overrides=settings.price_overrides,
        no_log_payload=tuple(settings.gateway_no_log_payload),
        down_after=settings.model_down_after,
        down_window_s=settings.model_down_window_s,
        down_s=settings.model_down_s,
    )


def model_limiter(settings: Settings, aio: AsyncRedis) -> ModelLimiter:
    """The fleet's per-model RPM/TPM budgets (MODEL_LIMITS; prompts' front matter adds to them)."""
    limits = {model: Limit(spec.get("rpm"), spec.get("tpm")) for model, spec in settings.model_limits.items()}
    return ModelLimiter(
        aio,
        limits,
        interactive_share=settings.model_limit_interactive_share,
        burst_s=settings.model_limit_burst_s,
        max_wait_s=settings.model_limit_max_wait_s,
    )


def build_services(settings: Settings) -> Services:
    """Everything a job runs with (imports litellm through the gateway client: seconds)."""
    configure(settings)
    client, aio = redis_client(settings), async_redis(settings)
    prompts = PromptRegistry(settings.prompts_dir, OUTPUT_MODELS)
    runtime = AgentRuntime(
        gateway=GatewayClient(gateway_config(settings), limiter=model_limiter(settings, aio)),
        prompts=prompts,
        sink=LedgerSink(Ledger(client), settings, aio),
        finish=FinishTurns(settings.finish_turns, settings.finish_turn_after_ms),
        resolve_version=LabelResolver(
            PromptLabels(client), prompts, ttl_s=settings.prompt_labels_ttl_s, epoch=LabelEpoch(aio)
        ),
    )
    results = ResultCache(
        client, aio, ttl_s=settings.result_cache_ttl_s, fresh_only=not settings.caches_enabled
    )
    # Threads start on first use; they end with the process (the interpreter joins them).
    writes = ThreadPoolExecutor(settings.write_threads, thread_name_prefix="writes")
    return Services(settings, client, open_store(settings), runtime, JobStatus(client), results, writes)


def wire(settings: Settings | None = None) -> None:
    """Let this process's jobs build their services from `settings` (the environment's by default)."""
    job_services.provide(lambda: build_services(settings or get_settings()))


def services(settings: Settings | None = None) -> Services:
    """This process's services; wires them from `settings` (or the environment's) if nothing has."""
    if not job_services.is_wired():
        wire(settings)
    return job_services.get_services()


def new_broker(settings: Settings, extra_middleware: tuple[Any, ...] = ()) -> RedisBroker:
    """A broker on the settings' Redis with every actor declared; not yet the process's global one."""
    # Messages whose fields have the wrong types fail to decode, and are dead-lettered at once.
    dramatiq.set_encoder(MessageEncoder())
    client = redis_client(settings)
    broker = build_broker(settings, client)
    # Fair batch lane: our submissions go through per-store lists; batch workers dispatch them.
    broker.add_middleware(FairDispatch(client, FairConfig.from_settings(settings)))
    for middleware in extra_middleware:
        broker.add_middleware(middleware)
    declare_actors(broker)
    return broker


def process_broker(settings: Settings | None = None) -> RedisBroker:
    """The process's broker, built on first use and set as Dramatiq's global broker."""
    global _broker
    with _lock:
        if _broker is None:
            _broker = new_broker(settings or get_settings())
            dramatiq.set_broker(_broker)
        return _broker


def api_context(
    settings: Settings, store: ObjectStore | None = None, broker: Broker | None = None
) -> ApiContext:
    """Everything the API's routes need. No model client: the web process never imports litellm."""
    check_redis(settings)
    client = redis_client(settings)
    queue = broker if broker is not None else process_broker(settings)
    status = JobStatus(client)
    ops = settings.ops_api_token.get_secret_value() if settings.ops_api_token else None
    aredis = async_redis(settings)
    return ApiContext(
        settings=settings,
        redis=client,
        store=store if store is not None else open_store(settings),
        broker=queue,
        status=status,
        tokens=TokenStore(client, ops_token=ops),
        limiter=RateLimiter(
            aredis, settings.api_rate_limit, settings.api_rate_window_s, settings.api_redis_timeout_s
        ),
        batches=Batches(queue, status),
        idempotency=Idempotency(aredis, settings.api_redis_timeout_s),
        aredis=aredis,
        pools=Pools.from_settings(settings),
    )
