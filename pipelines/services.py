"""What every job runs with: settings, Redis, the object store, the agent runtime, job status, results.

The composition root (`entrypoints/compose.py`) builds it and hands its builder to `provide`;
actors read it with `get_services()`, built once per process on first use (the CLI stays fast).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import redis

from adapters.errors import ConfigError
from adapters.settings import Settings
from adapters.store import ObjectStore
from agents.runtime import AgentRuntime
from pipelines.result_cache import ResultCache
from pipelines.status import JobStatus

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    store: ObjectStore
    runtime: AgentRuntime
    status: JobStatus
    results: ResultCache
    # `WRITE_THREADS` threads for the writes a job makes after its model call (`write`).
    writes: Executor

    async def write(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`asyncio.to_thread` on the `writes` threads: a batch job's object-store and draft writes.

        Not the loop's default executor: litellm sets up every call there (`acompletion`
        hops to it), and a wave of finished jobs' writes queued ahead of those hops held
        the next calls back (decision 0028). The context goes along, as `to_thread` does.
        """
        call: Callable[[], T] = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.writes, call)


_lock = threading.Lock()
_builder: Callable[[], Services] | None = None
_built: Services | None = None


def provide(builder: Callable[[], Services] | None) -> Callable[[], Services] | None:
    """Use `builder` for this process's services from now on; returns the previous one (to restore)."""
    global _builder, _built
    with _lock:
        previous, _builder, _built = _builder, builder, None
    return previous


def is_wired() -> bool:
    return _builder is not None


def built() -> Services | None:
    """This process's services if they were built (nothing is built here)."""
    return _built


def get_services() -> Services:
    """This process's services, built by the composition root's builder on first use."""
    global _built
    with _lock:
        if _built is None:
            if _builder is None:
                raise ConfigError(
                    "no services wired in this process: start it through an entrypoint "
                    "(`dramatiq entrypoints.worker:setup`, the API or the CLI), which calls "
                    "entrypoints.compose.wire()"
                )
            _built = _builder()
        return _built
