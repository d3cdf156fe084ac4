"""Cross-cutting work for every message: log context, job status, retry policy."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread, set_event_loop_thread
from dramatiq.middleware import AsyncIO, Middleware

from adapters.errors import InvalidInput, PermanentError, RetryableError
from adapters.logs import get_logger, scrub
from adapters.pipeline_names import canonical
from agents._litellm import SetupInline
from pipelines import services
from pipelines.durable import DurableStatus

log = get_logger("pipelines")
RETRY_LIMIT = 6


def should_retry(retries: int, exc: BaseException) -> bool:
    """Retry what may pass (rate limits, transient faults) a bounded number of times; never the rest."""
    if isinstance(exc, PermanentError | InvalidInput):
        return False
    if isinstance(exc, RetryableError | dramatiq.errors.Retry):
        return retries < RETRY_LIMIT
    # Unknown errors: a couple of tries, then the dead-letter queue with the reason.
    return retries < 2


# How often a worker thread waiting on its coroutine looks for an asynchronous Interrupt (time
# limit, shutdown). Dramatiq's 0.1 s wakes 256 idle-waiting threads 2,560 times a second, ~1 ms
# of CPU per job in the concurrency benchmark; our limits are a minute and more.
INTERRUPT_CHECK_S = 1.0


def event_loop_thread(logger: Any) -> EventLoopThread:
    """A worker's event loop thread, not started: Dramatiq's, with the service's interrupt check."""
    thread = EventLoopThread(logger, interrupt_check_ival=INTERRUPT_CHECK_S)
    # A daemon, like Dramatiq's worker and consumer threads: if the process is told to exit
    # without a graceful stop, the loop must not keep it alive (and its consumers running).
    thread.daemon = True
    # litellm's request set-up runs on the loop, not on a thread of its own (agents/_litellm.py).
    thread.loop.set_default_executor(SetupInline(thread_name_prefix="asyncio"))
    return thread


class AsyncEventLoop(AsyncIO):
    """Dramatiq's `AsyncIO` with an interrupt check suited to hundreds of waiting threads."""

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        thread = event_loop_thread(self.logger)
        thread.start(timeout=1.0)
        set_event_loop_thread(thread)

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        # The gateway's connections on this loop are closed on it before it stops: left open,
        # each is an "Unclosed client session" traceback when the process exits.
        thread, svc = get_event_loop_thread(), services.built()
        if thread is not None and svc is not None:
            try:
                thread.run_coroutine(svc.runtime.gateway.aclose(litellm_clients=True))
            except Exception as exc:  # shutting down: log, and stop the loop all the same
                log.warning("gateway_close_failed", error=str(exc))
        super().before_worker_shutdown(broker, worker)


def _store_of(message: Any) -> str | None:
    args = message.args or ()
    store = args[0] if args else (message.kwargs or {}).get("store")
    return store if isinstance(store, str) else None


class LogContext(Middleware):
    """Bind message id, actor, queue and store to every log line of a message."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id,
            actor=message.actor_name,
            queue=message.queue_name,
            store=_store_of(message),
        )

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


# What each running job wants in its final status (outputs, cost, ...), by message id. The actor
# (on the event loop) leaves it here; JobTracking writes it with the end in one round trip.
_results: dict[str, dict[str, Any]] = {}


def record_result(job_id: str, **fields: Any) -> None:
    """Fields for `job_id`'s final status, written together with `done` when the job ends."""
    if not job_id:
        return  # not a Dramatiq job (nothing will end it): there is no status to write
    _results.setdefault(job_id, {}).update(fields)


def recorded_result(job_id: str) -> dict[str, Any]:
    """What `job_id` recorded so far for its final status (read by the job's span before it ends)."""
    return dict(_results.get(job_id) or {})


class JobTracking(Middleware):
    """Keep `wandstore:job:<message id>` current: running, retrying, done or failed with a reason.

    Two scripts per job: one when it starts, one when it ends (final status, outputs, batch
    count, webhook lookup).
    """

    _durable: DurableStatus | None = None

    def _status(self, broker: Any) -> DurableStatus:
        # Waits for Redis: a status write lost in a blip would leave the job "running" for ever.
        # One per broker client, not per hook: it registers its scripts when built.
        found = self._durable
        if found is None or found.client is not broker.client:
            found = self._durable = DurableStatus(broker.client)
        return found

    def before_process_message(self, broker: Any, message: Any) -> None:
        message.options["_started"] = time.perf_counter()
        self._status(broker).started(
            message.message_id,
            status="running",
            started_at=time.time(),
            pipeline=canonical(message.actor_name),
            queue=message.queue_name,
            store=_store_of(message),
        )

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        # LogContext has cleared the message's log context by now (after-hooks run in reverse):
        # these lines name the job themselves.
        fields = _results.pop(message.message_id, {})
        elapsed_ms = round(
            (time.perf_counter() - message.options.pop("_started", time.perf_counter())) * 1000
        )
        if exception is None:
            _after_job(
                broker,
                self._status(broker),
                message.message_id,
                "done",
                status="done",
                finished_at=time.time(),
                **fields,
            )
            log.info("job_done", job_id=message.message_id, actor=message.actor_name, duration_ms=elapsed_ms)
            return
        # A rate limit is re-raised as dramatiq.Retry (to honour retry-after): name what happened.
        cause = exception.__cause__ if isinstance(exception, dramatiq.Retry) else None
        shown = cause if cause is not None else exception
        reason = scrub(f"{type(shown).__name__}: {shown}")
        if message.failed:
            _after_job(
                broker,
                self._status(broker),
                message.message_id,
                "failed",
                status="failed",
                progress=f"failed: {reason}",
                error=reason,
                finished_at=time.time(),
            )
            log.error(
                "job_failed",
                job_id=message.message_id,
                actor=message.actor_name,
                error=reason,
                duration_ms=elapsed_ms,
            )
        else:
            self._status(broker).update(message.message_id, status="retrying", error=reason)
            log.warning(
                "job_retrying",
                job_id=message.message_id,
                actor=message.actor_name,
                error=reason,
                duration_ms=elapsed_ms,
            )

    def after_skip_message(self, broker: Any, message: Any) -> None:
        _results.pop(message.message_id, None)


def _after_job(broker: Any, tracker: DurableStatus, job_id: str, outcome: str, **fields: Any) -> None:
    # Imported here: followups enqueue through modules that import the broker, which imports us.
    from pipelines.followups import after_job

    after_job(broker, tracker, job_id, outcome, **fields)
