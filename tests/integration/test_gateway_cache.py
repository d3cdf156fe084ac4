"""Gateway cache headers: a deterministic cache key per call, skip-cache when fresh is forced."""

from __future__ import annotations

from typing import Any

from agents.usage import CallContext

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def prompt(services: Any) -> Any:
    return services.runtime.prompts.get("product_copy", "v1")


def test_the_cache_key_depends_on_exactly_what_decides_the_answer(services: Any) -> None:
    from agents.base import call_key

    p = prompt(services)
    # Given the same prompt version and messages, built twice
    same = call_key(p, [dict(m) for m in MESSAGES])
    # Then the key is the same (so every worker and retry hits one entry), and changes with the messages
    assert call_key(p, MESSAGES) == same
    assert same.startswith("product_copy@v1:") and len(same) == len("product_copy@v1:") + 40
    assert call_key(p, [*MESSAGES[:1], {"role": "user", "content": "other"}]) != same
    # and a stable value: no per-process salt (sha256 of canonical JSON)
    assert same == "product_copy@v1:" + _expected_digest(p)


def _expected_digest(p: Any) -> str:
    import hashlib
    import json

    canonical = json.dumps(
        [p.ref, p.meta.model, p.meta.temperature, p.meta.max_tokens, MESSAGES],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def test_headers_carry_ttl_and_key_or_skip_cache(services: Any) -> None:
    gw = services.runtime.gateway
    ctx = CallContext(store="s1", pipeline="product_copy", job_id="j1")
    # When a prompt sets a TTL
    cached = gw.headers(ctx, "product_copy@v1", cache_ttl=86400, cache_key="product_copy@v1:abc")
    # Then the TTL and the key, scoped to the store, are sent
    assert cached["cf-aig-cache-ttl"] == "86400" and cached["cf-aig-cache-key"] == "s1:product_copy@v1:abc"
    assert "cf-aig-skip-cache" not in cached
    # When a fresh answer is forced, the gateway is told to skip its cache (and nothing is cached)
    fresh = gw.headers(ctx, "product_copy@v1", cache_ttl=86400, cache_key="k", skip_cache=True)
    assert fresh["cf-aig-skip-cache"] == "true"
    assert "cf-aig-cache-ttl" not in fresh and "cf-aig-cache-key" not in fresh
