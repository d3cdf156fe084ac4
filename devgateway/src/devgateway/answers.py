"""Provider-shaped answers: OpenAI chat completions and Anthropic messages, built from a request body."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devgateway.prompt import (
    Conversation,
    anthropic_conversation,
    material,
    openai_conversation,
)
from devgateway.schema_instance import (
    HOSTILE_PAYLOADS,
    make_instance,
    make_json_object,
    make_text,
    violate,
)
from devgateway.state import GatewayState
from devgateway.tokens import count_model_tokens


class BadRequest(ValueError):
    """The request body is not something the provider would accept."""


@dataclass(frozen=True)
class Plan:
    """What shape of answer a request asks for."""

    mode: str  # "schema" | "json" | "text" | "tool"
    schema: dict[str, Any] | None = None
    tool_name: str | None = None


@dataclass(frozen=True)
class Answer:
    """A generated answer and the token counts that depend only on the request body."""

    payload: Any
    text: str
    completion_tokens: int
    prompt_tokens: int
    system: str
    system_tokens: int


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _generate(
    plan: Plan, conv: Conversation, digest: str, hostile: bool, invalid: bool, payloads: Sequence[str]
) -> tuple[Any, str]:
    seed = int(digest[:16], 16)
    stuff = material(conv)
    if plan.mode in ("schema", "tool") and plan.schema is not None:
        payload = make_instance(plan.schema, stuff, seed, hostile, payloads)
        if invalid:
            payload = violate(payload, plan.schema)
        return payload, _dumps(payload)
    if plan.mode == "json":
        obj = make_json_object(stuff, seed, hostile, payloads)
        if invalid:
            return None, "Sure! Here is the JSON you asked for: " + _dumps(obj)[:-1]
        return obj, _dumps(obj)
    text = make_text(stuff, seed, hostile, payloads)
    return text, text


def _answer(state: GatewayState, conv: Conversation, plan: Plan, digest: str, invalid: bool) -> Answer:
    hostile = state.behaviour.hostile
    payloads = state.behaviour.payloads or HOSTILE_PAYLOADS
    key = (digest, hostile, payloads, "invalid" if invalid else "ok")
    cached = state.answers.get(key)
    if cached is not None:
        return cached
    payload, text = _generate(plan, conv, digest, hostile, invalid, payloads)
    model = conv.model
    answer = Answer(
        payload=payload,
        text=text,
        completion_tokens=count_model_tokens(text, model),
        prompt_tokens=sum(count_model_tokens(t, model) for t in conv.texts),
        system=conv.system,
        system_tokens=count_model_tokens(conv.system, model),
    )
    state.answers.put(key, answer)
    return answer


def _record(state: GatewayState, model: str, answer: Answer, cached_tokens: int) -> None:
    stats = state.stats
    stats.model_calls += 1
    stats.by_model[model] += 1
    stats.prompt_tokens += answer.prompt_tokens
    stats.completion_tokens += answer.completion_tokens
    stats.cached_tokens += cached_tokens


# --- OpenAI ----------------------------------------------------------------------


def openai_plan(body: dict[str, Any]) -> Plan:
    """Read `response_format` / `tools` of a chat-completions request."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise BadRequest("response_format.json_schema.schema must be an object")
            return Plan("schema", schema)
        if fmt.get("type") == "json_object":
            return Plan("json")
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if tools and choice != "none":
        wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        tool = next((t for t in tools if t["function"].get("name") == wanted), tools[0])
        params = tool["function"].get("parameters")
        return Plan(
            "tool", params if isinstance(params, dict) else {"type": "object"}, tool["function"]["name"]
        )
    return Plan("text")


def openai_completion(state: GatewayState, body: dict[str, Any], digest: str, invalid: bool = False) -> bytes:
    """A `chat.completion` body answering `body`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array")
    if body.get("stream"):
        raise BadRequest("the dev gateway does not stream; send stream=false")
    conv = openai_conversation(body)
    plan = openai_plan(body)
    answer = _answer(state, conv, plan, digest, invalid)
    cached = state.system_cached_tokens(conv.model, answer.system, answer.system_tokens)
    _record(state, conv.model, answer, cached)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text,
        "refusal": None,
        "annotations": [],
    }
    finish = "stop"
    if plan.mode == "tool":
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{digest[:24]}",
                "type": "function",
                "function": {"name": plan.tool_name, "arguments": answer.text},
            }
        ]
        finish = "tool_calls"
    response = {
        "id": f"chatcmpl-{digest[:29]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": conv.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_devgateway",
    }
    return json.dumps(response, ensure_ascii=False).encode()


# --- Anthropic -------------------------------------------------------------------


def anthropic_plan(body: dict[str, Any]) -> Plan:
    """Read `tools`/`tool_choice` (litellm's forced JSON tool) or `output_format` of a messages request."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    raw_choice = body.get("tool_choice")
    choice: dict[str, Any] = raw_choice if isinstance(raw_choice, dict) else {}
    if tools and choice.get("type") != "none":
        wanted = choice.get("name") if choice.get("type") == "tool" else None
        tool = next((t for t in tools if t.get("name") == wanted), tools[0])
        schema = tool.get("input_schema")
        return Plan("tool", schema if isinstance(schema, dict) else {"type": "object"}, str(tool["name"]))
    output_format = body.get("output_format")
    output_config = body.get("output_config")
    if not isinstance(output_format, dict) and isinstance(output_config, dict):
        output_format = output_config.get("format")
    if isinstance(output_format, dict) and isinstance(output_format.get("schema"), dict):
        return Plan("schema", output_format["schema"])
    return Plan("text")


def anthropic_message(state: GatewayState, body: dict[str, Any], digest: str, invalid: bool = False) -> bytes:
    """A `message` body answering `body`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: field required")
    if not isinstance(body.get("max_tokens"), int):
        raise BadRequest("max_tokens: field required")
    if body.get("stream"):
        raise BadRequest("the dev gateway does not stream; send stream=false")
    conv = anthropic_conversation(body)
    plan = anthropic_plan(body)
    answer = _answer(state, conv, plan, digest, invalid)
    cached = state.system_cached_tokens(conv.model, answer.system, answer.system_tokens)
    _record(state, conv.model, answer, cached)
    if plan.mode == "tool":
        tool_input = answer.payload if isinstance(answer.payload, dict) else {"value": answer.payload}
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": f"toolu_{digest[:24]}", "name": plan.tool_name, "input": tool_input}
        ]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": answer.text}]
        stop = "end_turn"
    response = {
        "id": f"msg_{digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": conv.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": answer.prompt_tokens - cached,
            "output_tokens": answer.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "service_tier": "standard",
        },
    }
    return json.dumps(response, ensure_ascii=False).encode()
