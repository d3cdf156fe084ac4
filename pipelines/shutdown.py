"""A deploy's SIGTERM stops a worker process gracefully, once, however many copies of it arrive.

Platforms stop a process group by signalling every process in it (Heroku stops a dyno so,
systemd's default `KillMode=control-group`, `pkill`, `kill -- -PGID`). A Dramatiq worker
process then gets the signal twice within a millisecond: once from the platform and once
relayed by Dramatiq's main process. Dramatiq reads the second as "kill now" and calls
`sys.exit` in the middle of its graceful stop, with its consumer threads still running.
Measured before this guard: the process never exited (the event loop thread kept it alive)
and went on pulling messages whose jobs failed on "cannot schedule new futures after
interpreter shutdown" until they were dead-lettered.

So a repeat of a stop signal within `REPEAT_WINDOW_S` of the first is ignored: the worker
finishes its jobs in flight, returns its prefetched messages to the queue and exits. A stop
signal sent later (an operator who means "now") still kills, as Dramatiq intends.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from dramatiq.middleware import Middleware

from adapters.logs import get_logger

log = get_logger("pipelines.shutdown")

REPEAT_WINDOW_S = 2.0
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

Handler = Callable[[int, Any], Any]


def ignoring_repeats(handler: Handler, window_s: float = REPEAT_WINDOW_S) -> Handler:
    """`handler`, except that a stop signal within `window_s` of the first one is dropped."""
    first: list[float] = []

    def guarded(signum: int, frame: Any) -> Any:
        now = time.monotonic()
        if first and now - first[0] < window_s:
            log.info("stop_signal_repeat_ignored", signal=signal.Signals(signum).name)
            return None
        first[:] = [now]
        return handler(signum, frame)

    guarded.__wrapped__ = handler  # type: ignore[attr-defined]
    return guarded


class StopOnce(Middleware):
    """Guard a Dramatiq CLI worker process's stop handlers (see the module doc)."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # a worker started inside another program (tests): its signals are not ours
        for sig in _STOP_SIGNALS:
            handler = signal.getsignal(sig)
            # Only the CLI worker process's own handler: never another program's.
            if callable(handler) and getattr(handler, "__module__", "") == "dramatiq.cli":
                signal.signal(sig, ignoring_repeats(handler))


__all__ = ["REPEAT_WINDOW_S", "StopOnce", "ignoring_repeats"]
