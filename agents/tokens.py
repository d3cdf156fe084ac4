"""Token counting with tiktoken's encodings bundled in litellm (never downloaded)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
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
    return _framed(messages, model, lambda text: count_text(text, model))


def tokens_at_most(messages: list[dict[str, Any]], model: str) -> int:
    """An upper bound of `count_messages`, without encoding the per-call text.

    A BPE token covers at least one byte, so a message's UTF-8 length bounds its tokens; the
    system message (the same for every call of a prompt) is counted exactly, once. Budget
    holds start from this bound and count exactly only when it does not fit (see
    `pipelines/accounting.LedgerSink.reserve`): tiktoken costs ~0.3 ms of CPU per prompt.
    """
    return _framed(messages, model, lambda text: len(text.encode()))


def _framed(messages: list[dict[str, Any]], model: str, count_other: Callable[[str], int]) -> int:
    total = 3  # OpenAI's framing: 3 for the reply, 4 per message
    for message in messages:
        content = str(message.get("content", ""))
        # A prompt's system message is the same for every call: count it once.
        n = _cached_count(content, model) if message.get("role") == "system" else count_other(content)
        total += 4 + n
    return total


# Above this many characters a count runs in a thread: tiktoken releases the GIL while it
# encodes, so a long prompt is counted on the other core instead of stalling the event loop.
OFF_LOOP_CHARS = 1500


async def count_messages_async(messages: list[dict[str, Any]], model: str) -> int:
    """`count_messages` for coroutines: long prompts are counted off the event loop."""
    size = sum(len(str(m.get("content", ""))) for m in messages if m.get("role") != "system")
    if size < OFF_LOOP_CHARS:
        return count_messages(messages, model)
    return await asyncio.to_thread(count_messages, messages, model)


@functools.lru_cache(maxsize=256)
def _cached_count(text: str, model: str) -> int:
    return count_text(text, model)


def truncate(text: str, max_tokens: int, model: str) -> str:
    """Cut `text` to at most `max_tokens` tokens."""
    if len(text.encode()) <= max_tokens:
        return text  # a BPE token covers at least one byte: no need to encode
    enc = encoding_for(model)
    ids = enc.encode(text, disallowed_special=())
    if len(ids) <= max_tokens:
        return text
    return str(enc.decode(ids[:max_tokens]))
