"""Which prompt version a call gets: labels from Redis, sticky canary splits, the files' default.

`production` takes every call no canary takes. Any other label with a weight above 0 is a
canary: a call goes to it when `bucket(agent, label, subject) < weight% of 10,000`. The
subject is the store, or the shopper within the store when the caller puts
`ctx.extra["shopper_id"]` in the `CallContext` (personalization), so the same store or
shopper always lands on the same side of a split, in every process. Raising a canary's
weight only adds subjects to it; nobody flips back and forth during a ramp-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol

from adapters.errors import BrokerUnavailable
from adapters.logs import get_logger
from adapters.prompt_labels import PRODUCTION, LabelState
from agents.prompts import PromptRegistry
from agents.usage import CallContext

SPLIT_BUCKETS = 10_000
log = get_logger("agents.rollout")


class LabelSource(Protocol):
    def get_all(self, agent: str) -> dict[str, LabelState]: ...


@dataclass(frozen=True)
class Choice:
    """The version a call gets and the label that sent it there."""

    version: str
    label: str


def subject_of(ctx: CallContext) -> str:
    """Who a split sticks to: the shopper within its store when known, else the store."""
    shopper = ctx.extra.get("shopper_id")
    return f"{ctx.store}/{shopper}" if shopper else ctx.store


def bucket(agent: str, label: str, subject: str) -> int:
    """A stable bucket in [0, 10000): the same in every process and on every run (not `hash()`)."""
    digest = hashlib.sha256(f"{agent}:{label}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SPLIT_BUCKETS


def canaries(labels: Mapping[str, LabelState], known: Collection[str]) -> list[tuple[str, LabelState]]:
    """Labels that take traffic from production, in the order calls are checked against them."""
    return [
        (name, state)
        for name, state in sorted(labels.items())
        if name != PRODUCTION and state.weight > 0 and state.version in known
    ]


def production_version(labels: Mapping[str, LabelState], default: str, known: Collection[str]) -> str:
    state = labels.get(PRODUCTION)
    return state.version if state is not None and state.version in known else default


def choose(
    agent: str,
    labels: Mapping[str, LabelState],
    subject: str,
    *,
    default: str,
    known: Collection[str],
) -> Choice:
    """The version for `subject`: the first canary whose slice holds it, else production."""
    for name, state in canaries(labels, known):
        if bucket(agent, name, subject) < state.weight * SPLIT_BUCKETS / 100:
            return Choice(state.version, name)
    return Choice(production_version(labels, default, known), PRODUCTION)


def traffic_shares(
    labels: Mapping[str, LabelState], default: str, known: Collection[str]
) -> dict[str, float]:
    """Expected share of calls (percent) per version; canaries are checked in order, so they nest."""
    shares: dict[str, float] = {}
    left = 100.0
    for _, state in canaries(labels, known):
        take = left * state.weight / 100
        shares[state.version] = shares.get(state.version, 0.0) + take
        left -= take
    base = production_version(labels, default, known)
    shares[base] = shares.get(base, 0.0) + left
    return shares


EpochReader = Callable[[], Awaitable[int]]
# How long a call waits for the label epoch before it goes on with the labels it has. Not short:
# on a busy worker the reply can take a while to be handled, and going on early would run the
# old labels; a Redis that refuses connections fails at once anyway, and one that stalls stalls
# the job's ledger calls too.
EPOCH_WAIT_S = 5.0


@dataclass(frozen=True)
class _Entry:
    """An agent's labels, until when they serve without a read, and the epoch they were read at."""

    expires: float
    labels: dict[str, LabelState]
    epoch: int


class LabelResolver:
    """`AgentRuntime.resolve_version`: labels read through a short in-process cache.

    With `epoch` (the label epoch, bumped by every move in the move's own transaction), every call
    first reads the epoch: one GET that goes out with the call's other Redis work. When it moved,
    the call waits for one fresh read of the labels (shared by every call that saw the move), so
    after `prompts promote` or `rollback` returns, the next job anywhere runs on the new labels.

    Otherwise labels serve for `ttl_s`; an expired entry keeps serving while one refresh runs in
    the resolver's own thread (stale while revalidating). When Redis can't be read (the epoch nor
    the labels), the last labels seen keep serving (else the files' default), and a stalled
    Redis can't pile up threads or stall the event loop's executor.
    """

    def __init__(
        self,
        source: LabelSource,
        prompts: PromptRegistry,
        ttl_s: float = 2.0,
        epoch: EpochReader | None = None,
    ) -> None:
        self.source = source
        self.prompts = prompts
        self.ttl_s = ttl_s
        self.epoch = epoch
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, Future[_Entry]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        # The epoch last read from Redis: a label read started after it holds labels at least that new.
        self._seen = -1
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prompt-labels")

    async def __call__(self, agent: str, ctx: CallContext) -> str | None:
        labels = await self.labels_of(agent)
        if not labels:
            return None
        choice = choose(
            agent,
            labels,
            subject_of(ctx),
            default=self.prompts.default_version(agent),
            known=self.prompts.versions(agent),
        )
        return choice.version

    async def labels_of(self, agent: str) -> dict[str, LabelState]:
        cached = self._cache.get(agent)
        if self.epoch is not None:
            now = await self._current_epoch()
            # `!=`, not `<`: a Redis that lost its data starts counting again from 0.
            if now is not None and (cached is None or cached.epoch != now):
                return await self._read_at(agent, now)
        if cached is not None and cached.expires > time.monotonic():
            return cached.labels
        pending = self._refresh(agent)
        if cached is not None:
            return cached.labels
        return (await asyncio.wrap_future(pending)).labels

    async def refresh(self, agent: str) -> dict[str, LabelState]:
        """Read `agent`'s labels now (joining a read already in flight)."""
        return (await asyncio.wrap_future(self._refresh(agent))).labels

    def invalidate(self, agent: str | None = None) -> None:
        """Forget cached labels (all agents, or one) so the next call reads Redis afresh."""
        with self._lock:
            self._generation += 1  # a read already in flight must not refill the cache
            for name in [agent] if agent else [*self._cache, *self._inflight]:
                self._cache.pop(name, None)
                self._inflight.pop(name, None)

    async def _current_epoch(self) -> int | None:
        assert self.epoch is not None
        try:
            now = await asyncio.wait_for(self.epoch(), EPOCH_WAIT_S)
        except (BrokerUnavailable, TimeoutError) as exc:
            # Redis is away or stalled: the labels last seen serve.
            log.warning("prompt_label_epoch_unavailable", error=str(exc) or type(exc).__name__)
            return None
        self._seen = now
        return now

    async def _read_at(self, agent: str, epoch: int) -> dict[str, LabelState]:
        # A read already in flight may have started before the move: then read once more.
        entry = await asyncio.wrap_future(self._refresh(agent))
        for _ in range(2):
            if entry.epoch >= epoch:
                break
            entry = await asyncio.wrap_future(self._refresh(agent))
        return entry.labels

    def _refresh(self, agent: str) -> Future[_Entry]:
        # One read per agent at a time, whichever event loop (or thread) asks.
        with self._lock:
            pending = self._inflight.get(agent)
            if pending is None:
                pending = self._reader.submit(self._read, agent, self._generation, self._seen)
                self._inflight[agent] = pending
            return pending

    def _read(self, agent: str, generation: int, epoch: int) -> _Entry:
        previous = self._cache.get(agent)
        entry = previous or _Entry(0.0, {}, -1)
        try:
            labels = self.source.get_all(agent)
            self._warn_unknown(agent, labels)
            entry = _Entry(0.0, labels, epoch)
        except BrokerUnavailable as exc:
            log.warning("prompt_labels_unavailable", agent=agent, error=str(exc))
        except (ValueError, KeyError, TypeError) as exc:  # a label Redis holds but we can't decode
            log.error("prompt_labels_unreadable", agent=agent, error=str(exc))
            entry = _Entry(0.0, entry.labels, epoch)  # read again only on the next move or expiry
        finally:
            entry = replace(entry, expires=time.monotonic() + self.ttl_s)
            with self._lock:
                if generation == self._generation:
                    self._cache[agent] = entry
                    self._inflight.pop(agent, None)
        return entry

    def _warn_unknown(self, agent: str, labels: Mapping[str, LabelState]) -> None:
        # A label can point at a version this worker's files don't have yet (a deploy in
        # flight); such a label is skipped until the file arrives.
        known = set(self.prompts.versions(agent))
        for name, state in labels.items():
            if state.version not in known:
                log.warning("prompt_label_unknown_version", agent=agent, label=name, version=state.version)
