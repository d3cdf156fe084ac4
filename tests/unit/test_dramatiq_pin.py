"""The Dramatiq whose internals pipelines/dramatiq_gaps.py fills in is the one installed and pinned."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import redis

from pipelines.dramatiq_gaps import DRAMATIQ_VERSION

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pinned(name: str) -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for spec in dependencies:
        found = re.fullmatch(rf"{name}(\[[^\]]*\])?==(\S+)", spec.replace(" ", ""))
        if found:
            return found.group(2)
    raise AssertionError(f"{name} is not pinned exactly (==) in pyproject.toml")


def test_the_installed_dramatiq_is_the_pinned_one_the_gaps_were_written_for() -> None:
    # If this fails, Dramatiq was upgraded (or the pin moved): re-check every gap named in
    # pipelines/dramatiq_gaps.py against the new version's code, then move DRAMATIQ_VERSION.
    pinned = _pinned("dramatiq")
    assert version("dramatiq") == pinned, f"installed dramatiq {version('dramatiq')}, pinned {pinned}"
    assert pinned == DRAMATIQ_VERSION, (
        f"dramatiq is pinned at {pinned}, but pipelines/dramatiq_gaps.py was checked against "
        f"{DRAMATIQ_VERSION}: re-check its gaps, then update DRAMATIQ_VERSION"
    )


def _dispatch_lua() -> str:
    import dramatiq.brokers.redis as redis_broker

    return (Path(redis_broker.__file__).parent / "redis" / "dispatch.lua").read_text()


def test_the_dispatch_script_is_laid_out_as_maintain_calls_it() -> None:
    # Gap 8: `maintain` passes ARGV in this order, under a command the script has no branch for.
    lua = _dispatch_lua()
    assert (
        "args=[command, timestamp, queue_name, worker_id, heartbeat_timeout, dead_message_ttl, "
        "do_maintenance, max_unpack_size, ...]" in lua
    )
    assert 'if do_maintenance == "1" then' in lua
    assert 'redis.call("zadd", heartbeats, timestamp, worker_id)' in lua
    # An unknown command falls through every branch: no top-level `else`.
    assert not re.search(r"^else\b", lua, re.MULTILINE)
    from pipelines.dramatiq_gaps import _MAINTAIN_ONLY

    assert f'command == "{_MAINTAIN_ONLY}"' not in lua


def test_the_key_layout_and_message_options_are_the_ones_the_gaps_read() -> None:
    import inspect

    from dramatiq.brokers.redis import RedisBroker

    lua = _dispatch_lua()
    # Gaps 6, 8 and 9: claims, heartbeats and bodies where Layout looks for them.
    assert 'local acks = namespace .. ":__acks__." .. worker_id' in lua
    assert 'local queue_acks = acks .. "." .. queue_name' in lua
    assert 'local heartbeats = namespace .. ":__heartbeats__"' in lua
    assert 'local queue_messages = queue_full_name .. ".msgs"' in lua
    # Each enqueued copy's Redis id is in its options (gap 9); the broker keeps these internals.
    assert '"redis_message_id": str(uuid4())' in inspect.getsource(RedisBroker.enqueue)
    broker = RedisBroker(middleware=[])
    assert "dispatch" in broker.scripts
    assert isinstance(broker._max_unpack_size, type(broker.enqueue))


def test_a_batch_worker_prefetches_no_more_than_it_runs_and_dramatiq_hands_that_to_its_consumers() -> None:
    import inspect

    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker

    from adapters.settings import get_settings
    from pipelines.fair_dispatch import FairConfig, FairDispatch

    # Gap 10 sets the attribute Dramatiq reads when it adds a consumer.
    assert "prefetch=self.delay_prefetch if delay else self.queue_prefetch" in inspect.getsource(Worker)
    # Gap 11: the CLI's --queues are where served_queues reads them.
    assert "self.consumer_whitelist = queues" in inspect.getsource(Worker.__init__)
    dispatch = FairDispatch(redis.Redis(), FairConfig.from_settings(get_settings()))
    for queues, expected in ((["batch", "deliveries"], 5), (None, 5), (["interactive"], 10)):
        worker = Worker(StubBroker(), queues=queues, worker_threads=5)
        assert worker.queue_prefetch == 10  # Dramatiq's default: twice its threads
        dispatch.before_worker_boot(worker.broker, worker)
        assert worker.queue_prefetch == expected, queues
