"""AI Gateway headers beyond metadata and caching: which job, how long to wait, what to log, which trace.

Sent on every call (`GatewayClient.headers`):

- `cf-aig-event-id`: the job id, so the gateway's log lines of a job can be found from its status;
- `cf-aig-request-timeout`: the client's own timeout in milliseconds (`GATEWAY_TIMEOUT_S`), so the
  gateway gives up when the client does, not later;
- `cf-aig-collect-log-payload: false` for the pipelines in `GATEWAY_NO_LOG_PAYLOAD`
  (personalization by default): a shopper's context stays out of the gateway's logs;
- `traceparent` (and `tracestate`): the model call's span, when traces are on.

And read back: `cf-aig-step`, which step of a gateway fallback chain served the call (0: the first).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from adapters.pipeline_names import PERSONALIZATION, canonical
from adapters.telemetry import trace_headers
from agents.usage import CallContext

# litellm hands a provider's response headers back prefixed (as for cf-aig-cache-status).
STEP = "llm_provider-cf-aig-step"
NO_LOG_PAYLOAD_DEFAULT = (PERSONALIZATION,)


def call_headers(ctx: CallContext, *, timeout_s: float, no_log_payload: Collection[str]) -> dict[str, str]:
    """The headers above for one call of `ctx`."""
    headers = {"cf-aig-request-timeout": str(max(1, round(timeout_s * 1000)))}
    if ctx.job_id:
        headers["cf-aig-event-id"] = ctx.job_id
    if canonical(ctx.pipeline) in {canonical(name) for name in no_log_payload}:  # an actor's name too
        headers["cf-aig-collect-log-payload"] = "false"
    headers.update(trace_headers())
    return headers


def served_step(headers: Mapping[str, Any]) -> int | None:
    """`cf-aig-step` of a response (litellm's prefixed headers), or None when the gateway sent none."""
    raw = headers.get(STEP)
    try:
        return int(str(raw).strip()) if raw is not None else None
    except ValueError:
        return None
