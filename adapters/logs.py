"""structlog set-up: one JSON object per line, secrets scrubbed from every field."""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any

import structlog

_SECRETS: set[str] = set()
_PATHS: dict[str, str] = {}
_REDACTED = "[redacted]"
# A fragment of a secret this long is masked wherever it shows (an upstream that echoes part
# of a credential; found for sure from FRAGMENT + FRAGMENT // 2 - 1 characters on); at either
# end of a text, a shorter one is (a text cut inside a secret).
FRAGMENT = 10
EDGE_FRAGMENT = 4


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so the scrubber can remove them from any log field."""
    _SECRETS.update(v for v in values if v and len(v) >= 4)


def register_private_path(path: str, shown_as: str) -> None:
    """Show `path` (a local folder of this host) as `shown_as` in scrubbed text, e.g. in job errors."""
    if path and path != "/":
        _PATHS[path] = shown_as


@functools.cache
def _probes(secret: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Grams of `secret` every long fragment contains, and its short prefixes and suffixes."""
    stride = FRAGMENT // 2
    grams = tuple(secret[i : i + FRAGMENT] for i in range(0, len(secret) - FRAGMENT + 1, stride))
    short = range(EDGE_FRAGMENT, min(len(secret), FRAGMENT))
    return grams, tuple(secret[:n] for n in short), tuple(secret[-n:] for n in short)


def _has_fragment(text: str, secret: str) -> bool:
    grams, prefixes, suffixes = _probes(secret)
    return any(g in text for g in grams) or text.endswith(prefixes) or text.startswith(suffixes)


def _mask_fragments(text: str, secret: str) -> str:
    if len(secret) > FRAGMENT:
        for i in range(len(secret) - FRAGMENT + 1):
            gram = secret[i : i + FRAGMENT]
            while gram in text:
                start = text.index(gram)
                end = start + FRAGMENT
                # Grow the match to the whole shared stretch before masking it.
                j = i + FRAGMENT
                while end < len(text) and j < len(secret) and text[end] == secret[j]:
                    end, j = end + 1, j + 1
                k = i
                while start > 0 and k > 0 and text[start - 1] == secret[k - 1]:
                    start, k = start - 1, k - 1
                text = text[:start] + _REDACTED + text[end:]
    for n in range(min(len(secret), FRAGMENT) - 1, EDGE_FRAGMENT - 1, -1):
        if text.endswith(secret[:n]):
            text = text[:-n] + _REDACTED
            break
    for n in range(min(len(secret), FRAGMENT) - 1, EDGE_FRAGMENT - 1, -1):
        if text.startswith(secret[-n:]):
            text = _REDACTED + text[n:]
            break
    return text


def scrub(text: str) -> str:
    """Replace every registered secret inside `text`, and any fragment of one; hide local paths."""
    for secret in _SECRETS:
        # Cheap probes first: most text holds no part of any secret.
        if _has_fragment(text, secret):
            text = _mask_fragments(text.replace(secret, _REDACTED), secret)
    for path, shown_as in _PATHS.items():
        if path in text:
            text = text.replace(path, shown_as)
    return text


# Fields that carry text from elsewhere (an upstream's error, an exception): where a partial
# echo of a credential shows up. Other fields get the whole-secret replace, which is ~20x cheaper.
_FOREIGN_TEXT = frozenset({"error", "exception", "reason", "detail", "message", "body"})


def _replace_whole(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    for path, shown_as in _PATHS.items():
        if path in text:
            text = text.replace(path, shown_as)
    return text


def _scrub_value(value: Any, thorough: bool) -> Any:
    if isinstance(value, str):
        return scrub(value) if thorough else _replace_whole(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v, thorough or k in _FOREIGN_TEXT) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v, thorough) for v in value]
    return value


def _scrub_processor(_: Any, __: str, event_dict: Any) -> Any:
    if not _SECRETS and not _PATHS:
        return event_dict
    return {k: _scrub_value(v, k in _FOREIGN_TEXT) for k, v in event_dict.items()}


def _final_scrub(_: Any, __: str, rendered: Any) -> Any:
    # Exceptions are rendered into the line after the field scrub; scrub the text again.
    if not (_SECRETS or _PATHS) or not isinstance(rendered, str):
        return rendered
    return scrub(rendered) if "Traceback" in rendered else _replace_whole(rendered)


class _OneWritePerLine:
    """The log stream, written one whole line per call, under one lock for structlog and stdlib.

    Under the `dramatiq` command a worker process's stderr is a pipe to the parent process
    whose every `write` is one message, and which threads must not share unguarded: with
    `print`'s two writes per line and two logging systems' separate locks, lines from busy
    threads came out merged, framed wrongly or lost.
    """

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream  # None: whatever `sys.stderr` is at each write (it may be swapped)
        self._lock = threading.Lock()

    @property
    def stream(self) -> Any:
        return self._stream if self._stream is not None else sys.stderr

    def write(self, text: str) -> int:
        with self._lock:
            stream = self.stream
            written = stream.write(text)
            stream.flush()
        return int(written or len(text))

    def flush(self) -> None:
        with self._lock:
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


# The command line's choice (`entrypoints/cli/main.py`): on a terminal, warnings only unless
# `--verbose`. None: LOG_LEVEL as set (the Procfile's processes, pipes, tests).
_cli_floor: int | None = None  # show nothing below this
_cli_ceiling: int | None = None  # show everything from this up


def set_cli_verbosity(verbose: bool, terminal: bool) -> None:
    """The CLI's log level from here on: `--verbose` shows INFO (LOG_LEVEL=DEBUG stays DEBUG); on a
    terminal without it, warnings and errors only; otherwise (a pipe, a file) LOG_LEVEL as set."""
    global _cli_floor, _cli_ceiling
    _cli_ceiling = logging.INFO if verbose else None
    _cli_floor = logging.WARNING if terminal and not verbose else None


def _effective(level_no: int) -> int:
    if _cli_ceiling is not None:
        level_no = min(level_no, _cli_ceiling)
    if _cli_floor is not None:
        level_no = max(level_no, _cli_floor)
    return level_no


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Route structlog and stdlib logging to one JSON line per event on stderr."""
    level_no = logging.getLevelName(level.upper())
    if not isinstance(level_no, int):
        level_no = logging.INFO
    level_no = _effective(level_no)
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
    # Resolved at each write: a stream swapped after configuring (a CLI test runner, a capture)
    # and then closed must not take the log, and with it the next caller, down.
    out = _OneWritePerLine(stream)
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
