"""What every agent runs on: one gateway client, the prompts, and a usage sink."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.logs import get_logger
from agents.finish_turns import FinishTurns
from agents.gateway import GatewayClient
from agents.prompts import PromptRegistry
from agents.usage import CallContext, UsageRecord

log = get_logger("agents.usage")


# The exact worst case of a call in nano-USD, worked out on demand (it counts the prompt's tokens).
ExactWorstCase = Callable[[], Awaitable[int]]


class UsageSink(Protocol):
    """Where usage goes: budgets are reserved before a call and settled after it."""

    async def reserve(
        self, ctx: CallContext, model: str, worst_case_nano: int, exact: ExactWorstCase | None = None
    ) -> Any:
        """Hold `worst_case_nano` against the store's budget; raise `BudgetExceeded` if it won't fit.

        `worst_case_nano` may be an upper bound of the worst case; `exact`, when given, works out
        the exact worst case (dearer: it counts tokens), for when the bound does not fit.
        """
        ...

    async def release(self, reservation: Any) -> None:
        """Give a reservation back (the call failed before costing anything)."""
        ...

    async def settle(self, reservation: Any, record: UsageRecord) -> None:
        """Replace the reservation with what the call really cost, and count it."""
        ...


class LogSink:
    """The default sink: one JSON log line per record, no budgets."""

    async def reserve(
        self, ctx: CallContext, model: str, worst_case_nano: int, exact: ExactWorstCase | None = None
    ) -> Any:
        return None

    async def release(self, reservation: Any) -> None:
        return None

    async def settle(self, reservation: Any, record: UsageRecord) -> None:
        log.info("usage_recorded", **record.as_log())


VersionResolver = Callable[[str, CallContext], Awaitable[str | None]]


async def _no_override(agent: str, ctx: CallContext) -> str | None:
    return None


@dataclass
class AgentRuntime:
    """Shared by every agent in a process."""

    gateway: GatewayClient
    prompts: PromptRegistry
    sink: UsageSink = field(default_factory=LogSink)
    # After a slow call, jobs finish their answers in arrival order (off unless the root sets it).
    finish: FinishTurns = field(default_factory=FinishTurns)
    # Picks a prompt version for a call (labels and canaries); None means the files' default.
    resolve_version: VersionResolver = _no_override
