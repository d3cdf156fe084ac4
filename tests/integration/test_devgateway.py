"""The dev gateway over real HTTP (httpx) and through litellm, against a separate gateway process."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Literal

import httpx
import pytest
from devgateway.prompt import Material
from devgateway.schema_instance import make_instance
from devgateway.text import HOSTILE_PAYLOADS
from devgateway.tokens import litellm_tokenizers_dir
from pydantic import BaseModel, Field, ValidationError

from devgateway import RunningGateway, start_in_thread
from tests.fixtures.gateway import DevGateway

pytest_plugins = ["tests.fixtures.gateway"]

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_TOOL_MODEL = "claude-3-5-haiku-20241022"  # litellm forces a JSON tool call
ANTHROPIC_NATIVE_MODEL = "claude-haiku-4-5"  # litellm sends native `output_format`
CANDIDATES = ["8123", "8124", "8125", "8126"]


class Swatch(BaseModel):
    name: str = Field(min_length=1, max_length=24)
    hex: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class Section(BaseModel):
    kind: Literal["hero", "grid", "story"]
    heading: str = Field(min_length=3, max_length=40)
    body_html: str = Field(max_length=200)


class Page(BaseModel):
    title: str = Field(min_length=10, max_length=60)
    seo_description: str = Field(max_length=155)
    tags: list[str] = Field(min_length=2, max_length=4)
    product_ids: list[str] = Field(min_length=1, max_length=3)
    palette: list[Swatch] = Field(min_length=2, max_length=3)
    sections: list[Section] = Field(min_length=1, max_length=2)
    price: float = Field(ge=1, le=99)
    rank: int = Field(ge=1, le=5)
    featured: bool
    subtitle: str | None = None
    slug: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=40)
    published_at: datetime
    version: Literal[2] = 2


SYSTEM = "You are WandStore's merchandiser. Answer with JSON that matches the schema."
USER = (
    "Write a landing page for the <b>Classic Legendary</b> insulated bottle, forged from "
    "recycled steel and keeping coffee hot for twenty hours on every trail.\n"
    "Pick products from these candidates:\n```json\n"
    + json.dumps([{"id": pid, "title": f"Trail flask {pid}"} for pid in CANDIDATES])
    + "\n```\n"
)


def messages(user: str = USER, system: str = SYSTEM) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def openai_body(schema_model: type[BaseModel] = Page, **extra: Any) -> dict[str, Any]:
    return {
        "model": OPENAI_MODEL,
        "messages": messages(),
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": schema_model.__name__, "schema": schema_model.model_json_schema()},
        },
        **extra,
    }


def anthropic_body(schema_model: type[BaseModel] = Page, **extra: Any) -> dict[str, Any]:
    return {
        "model": ANTHROPIC_TOOL_MODEL,
        "max_tokens": 1024,
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [{"role": "user", "content": USER}],
        "tools": [{"name": "json_tool_call", "input_schema": schema_model.model_json_schema()}],
        "tool_choice": {"type": "tool", "name": "json_tool_call"},
        **extra,
    }


HTTP = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def post_openai(gw: DevGateway | RunningGateway, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return HTTP.post(gw.base_url + "/openai/chat/completions", json=body, **kw)


def post_anthropic(gw: DevGateway | RunningGateway, body: dict[str, Any], **kw: Any) -> httpx.Response:
    headers = {"x-api-key": "dev", "anthropic-version": "2023-06-01", **kw.pop("headers", {})}
    return HTTP.post(gw.base_url + "/anthropic/v1/messages", json=body, headers=headers, **kw)


def content(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def prompt_words() -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", USER)}


def encoding(name: str) -> Any:
    os.environ["TIKTOKEN_CACHE_DIR"] = str(litellm_tokenizers_dir())
    import tiktoken

    return tiktoken.get_encoding(name)


# --- answers ---------------------------------------------------------------------


def test_openai_answer_is_schema_valid_plausible_and_deterministic(gateway: DevGateway) -> None:
    first = post_openai(gateway, openai_body())
    assert first.status_code == 200
    data = first.json()
    assert data["object"] == "chat.completion" and data["model"] == OPENAI_MODEL
    assert data["choices"][0]["finish_reason"] == "stop"
    page = Page.model_validate_json(content(first))
    assert set(page.product_ids) <= set(CANDIDATES)
    assert all(s.body_html.startswith("<p>") and s.body_html.endswith("</p>") for s in page.sections)
    words = prompt_words()
    assert {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", page.seo_description)} <= words
    assert first.headers["cf-aig-cache-status"] == "MISS" and first.headers["cf-aig-log-id"]

    second = post_openai(gateway, openai_body())
    assert content(second) == content(first)
    assert second.headers["cf-aig-log-id"] != first.headers["cf-aig-log-id"]
    other = post_openai(gateway, {**openai_body(), "messages": messages(USER + " Make it bold.")})
    assert content(other) != content(first)


def test_anthropic_forced_tool_answer(gateway: DevGateway) -> None:
    response = post_anthropic(gateway, anthropic_body())
    assert response.status_code == 200
    data = response.json()
    assert data["type"] == "message" and data["stop_reason"] == "tool_use"
    block = data["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "json_tool_call"
    Page.model_validate(block["input"])
    assert set(data["usage"]) >= {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }


def test_text_and_json_object_modes(gateway: DevGateway) -> None:
    plain = post_openai(gateway, {"model": OPENAI_MODEL, "messages": messages()})
    assert content(plain) and not content(plain).startswith("{")
    as_json = post_openai(
        gateway, {"model": OPENAI_MODEL, "messages": messages(), "response_format": {"type": "json_object"}}
    )
    assert isinstance(json.loads(content(as_json)), dict)


def test_usage_is_tiktoken_counts_and_system_prompt_is_cached(gateway: DevGateway) -> None:
    o200k = encoding("o200k_base")
    first = post_openai(gateway, openai_body()).json()
    usage = first["usage"]
    assert usage["prompt_tokens"] == len(o200k.encode(SYSTEM)) + len(o200k.encode(USER))
    assert usage["completion_tokens"] == len(o200k.encode(first["choices"][0]["message"]["content"]))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    again = post_openai(gateway, openai_body()).json()["usage"]
    assert again["prompt_tokens_details"]["cached_tokens"] == len(o200k.encode(SYSTEM))

    cl100k = encoding("cl100k_base")
    data = post_anthropic(gateway, anthropic_body()).json()
    u = data["usage"]
    assert u["input_tokens"] + u["cache_read_input_tokens"] == len(cl100k.encode(SYSTEM)) + len(
        cl100k.encode(USER)
    )
    assert u["cache_read_input_tokens"] == 0
    assert u["output_tokens"] == len(
        cl100k.encode(json.dumps(data["content"][0]["input"], ensure_ascii=False))
    )
    u2 = post_anthropic(gateway, anthropic_body()).json()["usage"]
    assert u2["cache_read_input_tokens"] == len(cl100k.encode(SYSTEM))


# --- gateway cache and headers ------------------------------------------------------


def test_gateway_cache_miss_hit_skip_and_key(gateway: DevGateway) -> None:
    ttl = {"cf-aig-cache-ttl": "60"}
    miss = post_openai(gateway, openai_body(), headers=ttl)
    hit = post_openai(gateway, openai_body(), headers=ttl)
    assert (miss.headers["cf-aig-cache-status"], hit.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    assert hit.content == miss.content
    skipped = post_openai(gateway, openai_body(), headers={**ttl, "cf-aig-skip-cache": "true"})
    assert skipped.headers["cf-aig-cache-status"] == "MISS"
    no_ttl = post_openai(gateway, openai_body())
    assert no_ttl.headers["cf-aig-cache-status"] == "MISS"

    keyed = {**ttl, "cf-aig-cache-key": "page-1"}
    assert post_openai(gateway, openai_body(), headers=keyed).headers["cf-aig-cache-status"] == "MISS"
    other_body = {**openai_body(), "temperature": 0.1}
    assert post_openai(gateway, other_body, headers=keyed).headers["cf-aig-cache-status"] == "HIT"

    stats = gateway.stats()
    assert stats["requests"] == 6
    assert stats["cache_hits"] == 2
    assert stats["model_calls"] == 4
    assert stats["by_model"] == {OPENAI_MODEL: 4}


def test_cache_ttl_expires(gateway: DevGateway) -> None:
    ttl = {"cf-aig-cache-ttl": "0.2"}
    assert post_openai(gateway, openai_body(), headers=ttl).headers["cf-aig-cache-status"] == "MISS"
    time.sleep(0.25)
    assert post_openai(gateway, openai_body(), headers=ttl).headers["cf-aig-cache-status"] == "MISS"


def test_metadata_header_validated_and_other_headers_accepted(gateway: DevGateway) -> None:
    ok_meta = json.dumps({f"k{i}": i for i in range(5)})
    headers = {
        "cf-aig-metadata": ok_meta,
        "cf-aig-authorization": "Bearer dev",
        "authorization": "Bearer sk-dev",
    }
    assert post_openai(gateway, openai_body(), headers=headers).status_code == 200
    too_many = post_openai(
        gateway, openai_body(), headers={"cf-aig-metadata": json.dumps({str(i): i for i in range(6)})}
    )
    assert too_many.status_code == 400
    assert too_many.json()["success"] is False
    nested = post_anthropic(gateway, anthropic_body(), headers={"cf-aig-metadata": '{"a": {"b": 1}}'})
    assert nested.status_code == 400
    assert post_openai(gateway, openai_body(), headers={"cf-aig-metadata": "[1]"}).status_code == 400


def test_bad_requests(gateway: DevGateway) -> None:
    bad_json = HTTP.post(gateway.base_url + "/openai/chat/completions", content=b"{nope")
    assert bad_json.status_code == 400 and "error" in bad_json.json()
    no_max_tokens = {k: v for k, v in anthropic_body().items() if k != "max_tokens"}
    rejected = post_anthropic(gateway, no_max_tokens)
    assert rejected.status_code == 400 and rejected.json()["type"] == "error"
    assert HTTP.post(gateway.base_url + "/mistral/v1/chat", json={}).status_code == 404


# --- faults and hostile mode ----------------------------------------------------------


def test_error_faults_in_provider_shapes(gateway: DevGateway) -> None:
    gateway.faults(
        [
            {"kind": "429", "retry_after": 7},
            {"kind": "500"},
            {"kind": "503", "match": "claude"},
        ]
    )
    limited = post_openai(gateway, openai_body())
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.headers["cf-aig-log-id"]
    assert post_openai(gateway, openai_body()).status_code == 500
    assert post_openai(gateway, openai_body()).status_code == 200  # the 503 only matches Anthropic bodies
    overloaded = post_anthropic(gateway, anthropic_body())
    assert overloaded.status_code == 503 and overloaded.json()["error"]["type"] == "overloaded_error"
    assert post_anthropic(gateway, anthropic_body()).status_code == 200
    assert gateway.stats()["faults_served"] == 3


def test_fault_times_and_clear(gateway: DevGateway) -> None:
    gateway.faults([{"kind": "500", "times": 2}, {"kind": "429"}])
    assert [post_openai(gateway, openai_body()).status_code for _ in range(4)] == [500, 500, 429, 200]
    gateway.faults([{"kind": "500", "times": 5}])
    gateway.clear_faults()
    assert post_openai(gateway, openai_body()).status_code == 200
    with pytest.raises(httpx.HTTPStatusError):
        gateway.faults([{"kind": "explode"}])


def test_broken_body_faults(gateway: DevGateway) -> None:
    gateway.faults([{"kind": "malformed_json"}, {"kind": "truncated"}, {"kind": "invalid_output"}])
    malformed = post_openai(gateway, openai_body())
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    truncated = post_openai(gateway, openai_body())
    assert truncated.status_code == 200 and truncated.text.startswith('{"id"')
    with pytest.raises(ValueError):
        truncated.json()
    invalid = post_openai(gateway, openai_body())
    with pytest.raises(ValidationError):
        Page.model_validate_json(content(invalid))

    gateway.faults([{"kind": "invalid_output"}])
    tool_input = post_anthropic(gateway, anthropic_body()).json()["content"][0]["input"]
    with pytest.raises(ValidationError):
        Page.model_validate(tool_input)


def test_latency_and_timeout_faults(gateway: DevGateway) -> None:
    gateway.faults([{"kind": "latency", "latency_ms": 300}])
    started = time.perf_counter()
    assert post_openai(gateway, openai_body()).status_code == 200
    assert time.perf_counter() - started >= 0.3

    gateway.faults([{"kind": "timeout"}])
    with pytest.raises(httpx.ReadTimeout):
        post_openai(gateway, openai_body(), timeout=0.3)
    assert post_openai(gateway, openai_body()).status_code == 200


def test_persistent_latency_is_concurrent(gateway: DevGateway) -> None:
    gateway.reset()  # the counts below are this burst's
    gateway.config(latency_ms=200)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            url = gateway.base_url + "/openai/chat/completions"
            calls = [
                client.post(url, json={"model": OPENAI_MODEL, "messages": messages(f"q{i}")})
                for i in range(50)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    started = time.perf_counter()
    assert asyncio.run(burst()) == [200] * 50
    elapsed = time.perf_counter() - started
    # One at a time, 50 calls of 200 ms take 10 s. The gateway's own count of the calls it held at
    # once is the proof of concurrency; the clock only bounds it, loosely, because a shared
    # 2-core machine can take a second or more just to open 50 connections (CI took 1.6 s).
    assert gateway.stats()["peak_in_flight"] >= 25
    assert elapsed < 5.0


def test_hostile_mode(gateway: DevGateway) -> None:
    gateway.config(hostile=True)
    data = json.loads(content(post_openai(gateway, openai_body())))
    page = Page.model_validate(data)
    assert page.title in HOSTILE_PAYLOADS or any(p in page.title for p in HOSTILE_PAYLOADS)
    assert any(p in page.seo_description for p in HOSTILE_PAYLOADS)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", s.hex) for s in page.palette)  # the pattern still holds
    assert gateway.config()["hostile"] is True
    gateway.reset()
    assert gateway.config()["hostile"] is False


# --- schema instances --------------------------------------------------------------


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk_strings(item)


def test_instances_respect_bounds_for_many_seeds() -> None:
    class Tight(BaseModel):
        code: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
        short: str = Field(min_length=3, max_length=5)
        headline: str = Field(max_length=60)
        long_text: str = Field(min_length=200, max_length=220)
        html: str = Field(max_length=12)
        words: list[str] = Field(min_length=3, max_length=3)
        ratio: float = Field(gt=0, lt=1)
        email: str = Field(json_schema_extra={"format": "email"})
        children: list[Tight] = Field(default_factory=list, max_length=2)

    schema = Tight.model_json_schema()
    stuff = Material(words=("an", "extraordinarily-long-compound", "word", "salad", "of", "many", "things"))
    for seed in range(200):
        for hostile in (False, True):
            Tight.model_validate(make_instance(schema, stuff, seed, hostile))
    assert make_instance(schema, stuff, 3) == make_instance(schema, stuff, 3)


def test_hex_colours_contrast() -> None:
    class Theme(BaseModel):
        background_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
        text_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
        accent_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    def contrast(a: str, b: str) -> float:
        hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    for seed in random.Random(1).sample(range(10_000), 20):
        theme = Theme.model_validate(make_instance(Theme.model_json_schema(), Material(words=("x",)), seed))
        assert contrast(theme.background_color, theme.text_color) >= 4.5
        assert contrast("#ffffff", theme.accent_color) >= 4.5


# --- in-process server ---------------------------------------------------------------


def test_start_in_thread_serves_and_stops() -> None:
    gw = start_in_thread(latency_ms=0)
    try:
        assert gw.base_url == f"{gw.url}/v1/dev/wandstore-ai"
        response = httpx.post(gw.base_url + "/openai/chat/completions", json=openai_body(), timeout=5)
        Page.model_validate_json(content(response))
        gw.faults([{"kind": "500"}])
        assert httpx.post(gw.base_url + "/anthropic/v1/messages", json=anthropic_body()).status_code == 500
        assert gw.stats()["faults_served"] == 1
        gw.faults([{"kind": "timeout"}])
        hanging = ThreadPoolExecutor(1).submit(post_openai, gw, openai_body())
        while gw.stats()["faults_served"] < 2:
            pass
    finally:
        started = time.perf_counter()
        gw.stop()
    assert time.perf_counter() - started < 1.5  # a hanging request does not hold shutdown up
    assert hanging.result(timeout=5).status_code == 504
    assert not gw.thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(gw.url + "/_dev/health", timeout=1)  # a fresh client: no pooled connection


# --- through litellm -----------------------------------------------------------------


@pytest.fixture(scope="module")
def litellm() -> Any:
    import litellm

    return litellm


@pytest.fixture(scope="module")
def run() -> Iterator[Any]:
    with asyncio.Runner() as runner:
        yield runner.run


def _status(response: Any) -> str:
    return str(response.hidden_params["additional_headers"]["llm_provider-cf-aig-cache-status"])


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        (f"openai/{OPENAI_MODEL}", "openai"),
        (f"anthropic/{ANTHROPIC_TOOL_MODEL}", "anthropic"),
        (f"anthropic/{ANTHROPIC_NATIVE_MODEL}", "anthropic"),
    ],
)
def test_litellm_structured_output_usage_and_cache_header(
    gateway: DevGateway, litellm: Any, run: Any, model: str, provider: str
) -> None:
    async def call() -> Any:
        return await litellm.acompletion(
            model=model,
            api_base=f"{gateway.base_url}/{provider}",
            api_key="dev",
            messages=messages(),
            response_format=Page,
            extra_headers={"cf-aig-cache-ttl": "60", "cf-aig-metadata": '{"store": "demo"}'},
        )

    first = run(call())
    second = run(call())
    page = Page.model_validate_json(first.choices[0].message.content)
    assert set(page.product_ids) <= set(CANDIDATES)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert (_status(first), _status(second)) == ("MISS", "HIT")
    enc = encoding("o200k_base" if provider == "openai" else "cl100k_base")
    assert first.usage.prompt_tokens == len(enc.encode(SYSTEM)) + len(enc.encode(USER))
    assert gateway.stats()["cache_hits"] == 1


@pytest.mark.parametrize(
    ("model", "provider"),
    [(f"openai/{OPENAI_MODEL}", "openai"), (f"anthropic/{ANTHROPIC_TOOL_MODEL}", "anthropic")],
)
def test_litellm_sees_faults(gateway: DevGateway, litellm: Any, run: Any, model: str, provider: str) -> None:
    async def call(**kw: Any) -> Any:
        return await litellm.acompletion(
            model=model,
            api_base=f"{gateway.base_url}/{provider}",
            api_key="dev",
            messages=messages(),
            response_format=Page,
            max_retries=0,
            **kw,
        )

    gateway.faults([{"kind": "429", "retry_after": 3}])
    with pytest.raises(litellm.RateLimitError) as limited:
        run(call())
    # `exc.response.headers` is empty on the Anthropic path; `litellm_response_headers` works for both.
    assert limited.value.litellm_response_headers["retry-after"] == "3"
    from agents.gateway import translate_error

    assert translate_error(limited.value).retry_after == 3.0  # type: ignore[attr-defined]
    gateway.faults([{"kind": "500"}, {"kind": "malformed_json"}, {"kind": "truncated"}])
    for _ in range(3):
        with pytest.raises((litellm.InternalServerError, litellm.APIConnectionError)):
            run(call())
    gateway.faults([{"kind": "timeout"}])
    with pytest.raises(litellm.Timeout):
        run(call(timeout=0.3))
    gateway.faults([{"kind": "invalid_output"}])
    with pytest.raises(ValidationError):
        Page.model_validate_json(run(call()).choices[0].message.content)
