"""Read a chat request: its texts (for token counts) and its words and candidate ids (for answers)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)```", re.DOTALL)
_TAG = re.compile(r"<[^>]{0,500}>")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+")
_TOKEN = re.compile(r"[\w'\u2019-]+")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'\u2019-]*")
_SKIP_KEYS = re.compile(r"(^|_)(id|ids|gid|sku|handle|url|src|href|image|images)$", re.IGNORECASE)
_JSON_START = re.compile(r"^[ \t]*[\[{]", re.MULTILINE)
_DECODER = json.JSONDecoder()
_ENTITY = re.compile(r"&[#A-Za-z0-9]{1,10};")
_MAX_WORDS = 4000
_ENOUGH_DATA_WORDS = 12
_EDGES = "'\u2019-"
_MAX_WORD_LEN = 24
# A line that says "palette hint" in prose (not inside quoted or JSON data, such as feedback).
_HINT_LINE = re.compile(r"(?im)^[^\"\[{\n]*\b(?:palette|colou?r) hint\b.*$")
_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


@dataclass(frozen=True)
class Conversation:
    """The parts of a chat request the dev gateway cares about."""

    system: str
    texts: list[str]
    user_text: str
    model: str


@dataclass(frozen=True)
class Material:
    """Words and candidate ids drawn from a prompt, the raw stuff of generated answers."""

    words: tuple[str, ...]
    candidate_ids: tuple[str | int, ...] = field(default=())
    # Colours a "palette hint" line of the prompt gives as #rrggbb: a designer honours them.
    hint_colours: tuple[str, ...] = field(default=())


def content_text(content: Any) -> str:
    """Flatten an OpenAI or Anthropic message `content` (string or list of parts) into text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (content_text(part) for part in content) if t)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        if "content" in content:
            return content_text(content["content"])
        if content.get("type") == "tool_use" and "input" in content:
            return json.dumps(content["input"], ensure_ascii=False)
    return ""


def _message_text(message: dict[str, Any]) -> str:
    text = content_text(message.get("content"))
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            args = (call.get("function") or {}).get("arguments")
            if isinstance(args, str):
                text = f"{text}\n{args}" if text else args
    return text


def openai_conversation(body: dict[str, Any]) -> Conversation:
    """Texts of an OpenAI chat-completions request; a leading system/developer message is the system."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [_message_text(m) for m in messages]
    system = texts[0] if messages and messages[0].get("role") in ("system", "developer") else ""
    user = "\n".join(t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user")
    return Conversation(system=system, texts=texts, user_text=user, model=str(body.get("model") or ""))


def anthropic_conversation(body: dict[str, Any]) -> Conversation:
    """Texts of an Anthropic messages request; `system` is the system."""
    system = content_text(body.get("system"))
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [_message_text(m) for m in messages]
    user = "\n".join(t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user")
    return Conversation(
        system=system,
        texts=[system, *texts] if system else texts,
        user_text=user,
        model=str(body.get("model") or ""),
    )


def _json_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _json_strings(item, out)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _SKIP_KEYS.search(str(key)):
                _json_strings(item, out)


def _ids_from_json(value: Any, key: str, out: list[str | int]) -> None:
    if isinstance(value, list):
        scalars = [v for v in value if isinstance(v, str | int) and not isinstance(v, bool)]
        if scalars and len(scalars) == len(value) and (key == "" or "id" in key.lower()):
            out.extend(scalars)
            return
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("id"), str | int):
                out.append(item["id"])
            else:
                _ids_from_json(item, key, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _ids_from_json(v, str(k), out)


def _words(text: str) -> list[str]:
    text = _ENTITY.sub(" ", _TAG.sub(" ", _URL.sub(" ", text)))
    stripped = (t.strip(_EDGES) for t in _TOKEN.findall(text) if len(t) <= _MAX_WORD_LEN)
    return [w for w in stripped if w and _WORD.fullmatch(w)]


def _prose_words(text: str, prose: list[str], data: list[str]) -> None:
    """Words of `text` into `prose`; string values of JSON that starts a line into `data`."""
    position = 0
    for match in _JSON_START.finditer(text):
        start = match.end() - 1
        if start < position:
            continue
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            continue
        prose.extend(_words(text[position:start]))
        _data_words(value, data)
        position = end
    prose.extend(_words(text[position:]))


def _data_words(value: Any, data: list[str]) -> None:
    strings: list[str] = []
    _json_strings(value, strings)
    for s in strings:
        data.extend(_words(s))


def material(conversation: Conversation) -> Material:
    """Words of the user's messages (JSON data first; markup and keys ignored) and ids in fenced JSON."""
    source = conversation.user_text or conversation.system
    ids: list[str | int] = []
    prose: list[str] = []
    data: list[str] = []
    position = 0
    for match in _FENCE.finditer(source):
        _prose_words(source[position : match.start()], prose, data)
        position = match.end()
        try:
            parsed = json.loads(match.group(1))
        except ValueError:
            prose.extend(_words(match.group(1)))
            continue
        _ids_from_json(parsed, "", ids)
        _data_words(parsed, data)
    _prose_words(source[position:], prose, data)
    if not prose and not data and conversation.system and source is not conversation.system:
        _prose_words(conversation.system, prose, data)
    # The data (a product, a brief) is what a real answer talks about; the prose is instructions.
    words = data if len(data) >= _ENOUGH_DATA_WORDS else data + prose
    unique_ids = tuple(dict.fromkeys(ids))
    hints = tuple(dict.fromkeys(h.lower() for line in _HINT_LINE.findall(source) for h in _HEX.findall(line)))
    return Material(words=tuple(words[:_MAX_WORDS]), candidate_ids=unique_ids, hint_colours=hints)
