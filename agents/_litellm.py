"""litellm, imported lazily and offline, set up for a service that prices and logs calls itself.

litellm takes seconds to import and would download its price map and tiktoken's encodings;
`prepare_offline_env` points both at the copies bundled with litellm first. In the pinned
litellm no setting turns off its per-call cost calculation, its logging payload or
`acompletion`'s hop to a worker thread (with no callbacks registered it already skips its
sync-callback thread); `python -m bench.litellm_settings` measures the ones it has. The
worker's loop takes the hop away with `SetupInline` (docs/decisions/0030).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


def tokenizers_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"


def prepare_offline_env() -> None:
    """Set the variables that keep litellm and tiktoken from reaching the network."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # Catalogs litellm would otherwise fetch from GitHub (e.g. Anthropic beta headers on
    # every Anthropic call): use the bundled copies.
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    os.environ["LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    tok = tokenizers_dir()
    if tok is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(tok)
        os.environ["CUSTOM_TIKTOKEN_CACHE_DIR"] = str(tok)


# The module settings the service changes; none makes a call cheaper (bench/RESULTS.md, 1b).
SETTINGS: dict[str, Any] = {
    "drop_params": True,  # a parameter a provider does not take is dropped, not a failed call
    "num_retries": 0,  # no retries of litellm's own: Dramatiq retries the job
    "suppress_debug_info": True,  # no "Give Feedback / Get Help" banner in the logs on errors
}


@functools.cache
def litellm() -> ModuleType:
    """The litellm module, offline and with the service's `SETTINGS`."""
    prepare_offline_env()
    import litellm as ll

    for name, value in SETTINGS.items():
        setattr(ll, name, value)
    return ll


class SetupInline(ThreadPoolExecutor):
    """An event loop's default executor that runs litellm's request set-up in the calling thread.

    `litellm.acompletion` hands `litellm.completion` (which only builds the request and returns
    the coroutine that sends it) to the loop's default executor, and no setting turns that hop
    off. On a worker whose loop runs hundreds of calls the hop is a thread wake-up, a GIL
    hand-off and a loop wake-up per call for work that does not block. This executor runs that
    one function where it is submitted, on the loop; everything else (`asyncio.to_thread`,
    DNS lookups) goes to its threads as before. It recognises the set-up by the function
    `litellm.main.completion` inside the `functools.partial` that `acompletion` submits; if a
    litellm release submits something else, that goes to a thread, as before
    (tests/unit/test_private_pins.py says so when the pin moves).
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if not is_litellm_setup(fn):
            return super().submit(fn, *args, **kwargs)
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            done.set_exception(exc)
        return done


def is_litellm_setup(fn: Any) -> bool:
    """`acompletion`'s submission: `partial(context.run, partial(litellm.main.completion, ...))`."""
    inner = fn.args[0] if isinstance(fn, functools.partial) and fn.args else None
    return isinstance(inner, functools.partial) and inner.func is litellm().main.completion
