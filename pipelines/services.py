"""Per-process services: one settings object, one Redis client, one store, one gateway client."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import redis

from adapters.ledger import Ledger
from adapters.logs import configure_logging, register_secrets
from adapters.prompt_labels import PromptLabels
from adapters.redis_conn import get_redis, resolve_url
from adapters.settings import Settings, get_settings
from adapters.store import ObjectStore, open_store
from agents.gateway import GatewayClient, GatewayConfig
from agents.prompts import PromptRegistry
from agents.rollout import LabelResolver
from agents.runtime import AgentRuntime
from agents.schemas import OUTPUT_MODELS
from pipelines.accounting import LedgerSink
from pipelines.no_cache import NoResultCache
from pipelines.result_cache import ResultCache
from pipelines.status import JobStatus


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    store: ObjectStore
    runtime: AgentRuntime
    status: JobStatus
    results: ResultCache
    dev_gateway: Any = None


def gateway_config(settings: Settings) -> tuple[GatewayConfig, Any]:
    """The configured AI Gateway, or an embedded dev gateway started in this process."""
    dev = None
    base = settings.gateway_base_url
    if base is None:
        from devgateway import start_in_thread

        dev = start_in_thread()
        base = dev.base_url
    secret = lambda s: s.get_secret_value() if s else None  # noqa: E731
    return (
        GatewayConfig(
            base_url=base,
            token=secret(settings.ai_gateway_token),
            openai_key=secret(settings.openai_api_key),
            anthropic_key=secret(settings.anthropic_api_key),
            timeout_s=settings.gateway_timeout_s,
            openai_direct=settings.gateway_openai_direct,
            skip_cache=not settings.caches_enabled,
            price_overrides=settings.price_overrides,
        ),
        dev,
    )


def build_services(settings: Settings) -> Services:
    configure_logging(settings.log_level, settings.log_format)
    register_secrets(settings.secret_values())
    client = get_redis(resolve_url(settings))
    config, dev = gateway_config(settings)
    prompts = PromptRegistry(settings.prompts_dir, OUTPUT_MODELS)
    runtime = AgentRuntime(
        gateway=GatewayClient(config),
        prompts=prompts,
        sink=LedgerSink(Ledger(client), settings),
        resolve_version=LabelResolver(PromptLabels(client), prompts, ttl_s=settings.prompt_labels_ttl_s),
    )
    cache = ResultCache if settings.caches_enabled else NoResultCache
    results = cache(client, ttl_s=settings.result_cache_ttl_s)
    return Services(settings, client, open_store(settings), runtime, JobStatus(client), results, dev)


@functools.cache
def get_services() -> Services:
    """Built once per process, on first use (not at import: the CLI stays fast)."""
    return build_services(get_settings())
