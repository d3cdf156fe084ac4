"""structlog set-up: one JSON object per line, secrets scrubbed from every field."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any

import structlog

_SECRETS: set[str] = set()
_REDACTED = "[redacted]"


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so the scrubber can remove them from any log field."""
    _SECRETS.update(v for v in values if v and len(v) >= 4)


def scrub(text: str) -> str:
    """Replace every registered secret inside `text`."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def _scrub_processor(_: Any, __: str, event_dict: Any) -> Any:
    if not _SECRETS:
        return event_dict
    return {k: _scrub_value(v) for k, v in event_dict.items()}


def _final_scrub(_: Any, __: str, rendered: Any) -> Any:
    # Exceptions are rendered into the line after the field scrub; scrub the text again.
    return scrub(rendered) if _SECRETS and isinstance(rendered, str) else rendered


class _OneWritePerLine:
    """The log stream, written one whole line per call, under one lock for structlog and stdlib.

    Under the `dramatiq` command a worker process's stderr is a pipe to the parent process
    whose every `write` is one message, and which threads must not share unguarded: with
    `print`'s two writes per line and two logging systems' separate locks, lines from busy
    threads came out merged, framed wrongly or lost.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            written = self._stream.write(text)
            self._stream.flush()
        return int(written or len(text))

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Route structlog and stdlib logging to one JSON line per event on stderr."""
    level_no = logging.getLevelName(level.upper())
    if not isinstance(level_no, int):
        level_no = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _scrub_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    out = _OneWritePerLine(stream or sys.stderr)
    structlog.configure(
        processors=[*shared, renderer, _final_scrub],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.WriteLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through stdlib; keep them quiet and in the same format.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Libraries' `exc_info=True` records (Dramatiq's critical errors): the traceback as
                # text, not a tuple of reprs; scrubbed with the rest of the line.
                structlog.processors.format_exc_info,
                renderer,
                _final_scrub,
            ],
            foreign_pre_chain=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _scrub_processor,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("LiteLLM", "litellm", "httpx", "botocore", "urllib3", "dramatiq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
