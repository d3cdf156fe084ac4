"""Token counting with tiktoken's encodings bundled in litellm (never downloaded)."""

from __future__ import annotations

import functools
from typing import Any

from agents._litellm import prepare_offline_env


@functools.cache
def _encoding(name: str) -> Any:
    prepare_offline_env()
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> Any:
    bare = model.split("/", 1)[-1]
    if bare.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")):
        return _encoding("o200k_base")
    return _encoding("cl100k_base")


def count_text(text: str, model: str) -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))


def count_messages(messages: list[dict[str, Any]], model: str) -> int:
    """Prompt tokens of chat messages (content plus OpenAI's per-message framing)."""
    enc = encoding_for(model)
    total = 3
    for message in messages:
        total += 4 + len(enc.encode(str(message.get("content", "")), disallowed_special=()))
    return total


def truncate(text: str, max_tokens: int, model: str) -> str:
    """Cut `text` to at most `max_tokens` tokens."""
    enc = encoding_for(model)
    ids = enc.encode(text, disallowed_special=())
    if len(ids) <= max_tokens:
        return text
    return str(enc.decode(ids[:max_tokens]))
