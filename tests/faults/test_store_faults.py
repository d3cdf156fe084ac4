"""The object store failing (5xx, drops, late writes, precondition failures): nothing half, nothing twice."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from dramatiq import Message

from tests.faults.conftest import R2World
from tests.faults.env import FaultEnv, approve_builds, copy_duplicates, sample_products, unique_product
from tests.faults.report import scenario
from tests.faults.s3proxy import Rule

RUNS = 2
BRIEF = {"description": "Plain-spoken goods for everyday use; calm, warm and trustworthy.", "tone": "warm"}
HOLD_S = 1.6  # a `late` write lands after the worker's R2_TIMEOUT_S (1 s) gave up on it


def proxy_store(r2: R2World) -> Any:
    """The bucket as the worker reaches it: through the failing S3 stand-in."""
    from adapters.store import R2Store
    from tests.faults.env import FAKE_R2

    return R2Store(r2.bucket, r2.proxy.url, FAKE_R2["R2_ACCESS_KEY_ID"], FAKE_R2["R2_SECRET_ACCESS_KEY"])


def submit_theme(env: FaultEnv, store: str, job_id: str) -> str:
    """Accept a build_theme job under a known id (the build id), as `submit_theme_build` does."""
    from agents.theme.inputs import parse_brief

    brief = parse_brief(BRIEF).model_dump(exclude_none=True)
    message: Message[Any] = Message(
        queue_name="batch",
        actor_name="build_theme",
        args=(store, brief),
        kwargs={},
        options={},
        message_id=job_id,
    )
    env.status.queued(job_id, pipeline="build_theme", store=store, queue="batch")
    env.broker.enqueue(message)
    return job_id


class PointerReader(threading.Thread):
    """A storefront reading `current.json` all along: it must only ever see a whole theme."""

    def __init__(self, env: FaultEnv, stores: list[str]) -> None:
        super().__init__(daemon=True)
        self.env, self.stores = env, stores
        self.stop = threading.Event()
        self.reads = 0
        self.half: list[str] = []

    def run(self) -> None:
        from adapters.errors import NotFound

        reader = self.env.reader
        while not self.stop.wait(0.03):
            for store in self.stores:
                try:
                    pointer = reader.get(f"themes/{store}/current.json").json()
                except NotFound:
                    continue
                self.reads += 1
                prefix = pointer["prefix"]
                try:
                    theme = reader.get(prefix + "theme.json").json()
                except NotFound:
                    self.half.append(f"{store}: current.json names {prefix} without theme.json")
                    continue
                present = set(reader.list(prefix))
                missing = [p for p in theme["files"] if prefix + p not in present]
                if missing:
                    self.half.append(f"{store}: current build {prefix} lacks {missing}")


def test_store_faults_leave_no_half_theme_and_no_duplicate(r2: R2World) -> None:
    env, proxy = r2.env, r2.proxy
    copy_tally = scenario(
        "object store faults: product copy",
        "S3 PUT of the output answered 503 / 500 (twice) / connection dropped / written after the "
        "client's 1 s timeout",
    )
    theme_tally = scenario(
        "object store faults: theme builds",
        "503 mid-publish; theme.json written after the client's timeout (the retry meets 412); "
        "current.json compare-and-swap conflict; a build file already written with other bytes",
    )
    from pipelines.theme_build import save_catalog

    stores = ["stanley1913", "electricshop", "kiids-kingdom"]
    for run in range(RUNS):
        if run:
            proxy.reset()
            env.reset()
        for store in stores:
            save_catalog(env.reader, store, {"products": sample_products(store)[:10]})
        # Given product copy whose output PUTs fail in every way
        copy_faults = [("503", 1), ("500", 2), ("drop", 1), ("late", 1), (None, 0), (None, 0)]
        jobs: dict[str, tuple[str, str]] = {}
        planned: dict[str, int] = {}
        for i, (kind, times) in enumerate(copy_faults):
            store, product = unique_product(f"s{run}x{i}q", i)
            if kind:
                proxy.plan(Rule("PUT", f"/products/{product['id']}/copy.json", kind, times, HOLD_S))
            job = env.submit_copy(store, product)
            jobs[job] = (store, str(product["id"]))
            planned[job] = times
        # and theme builds: one failing mid-publish (and on its pointer when its draft is approved),
        # one whose manifest lands late, one meeting a file already written (with other bytes)
        ok1, ok2, clash = (str(uuid.uuid4()) for _ in range(3))
        proxy.plan(
            Rule("PUT", f"/builds/{ok1}/sections/", "503", 1),
            Rule("PUT", "/themes/stanley1913/current.json", "412", 1),
            Rule("PUT", f"/builds/{ok2}/theme.json", "late", 1, HOLD_S),
        )
        env.reader.put(
            f"themes/kiids-kingdom/builds/{clash}/tokens.css", b":root{--x:0}", content_type="text/css"
        )
        watcher = PointerReader(env, stores)
        watcher.start()
        themes = {
            submit_theme(env, "stanley1913", ok1): "stanley1913",
            submit_theme(env, "electricshop", ok2): "electricshop",
            submit_theme(env, "kiids-kingdom", clash): "kiids-kingdom",
        }
        # When the worker runs through the faults, and the merchant approves the finished builds
        # (themes wait for review) through the same failing store
        outcome = env.wait_terminal([*jobs, *themes], timeout_s=90)
        approve_builds(env, proxy_store(r2), {j: s for j, s in themes.items() if j in outcome.completed})
        watcher.stop.set()
        watcher.join()
        duplicates = copy_duplicates(env, {j: jobs[j] for j in jobs}, outcome)
        copy_tally.add(
            sent=len(jobs),
            completed=sum(j in outcome.completed for j in jobs),
            failed=sum(j in outcome.failed for j in jobs),
            lost=sum(j in outcome.lost for j in jobs),
            duplicated=len(duplicates),
        )
        theme_problems: list[str] = list(watcher.half)
        for job, store in themes.items():
            builds = {k.split("/")[3] for k in env.objects(f"themes/{store}/builds/")}
            if builds - {job}:
                theme_problems.append(f"{store}: builds {sorted(builds - {job})} besides {job}")
        theme_tally.add(
            sent=len(themes),
            completed=sum(j in outcome.completed for j in themes),
            failed=sum(j in outcome.failed for j in themes),
            lost=sum(j in outcome.lost for j in themes),
            duplicated=len(theme_problems),
        )
        theme_tally.note("pointer reads by a storefront", watcher.reads)
        copy_tally.note("store faults served", sum(t for t in planned.values()))

        # Then no job is lost, and product copy is published once per job
        assert not outcome.lost, {j: outcome.infos[j] for j in outcome.lost}
        assert not duplicates, duplicates
        for job, times in planned.items():
            info = outcome.infos[job]
            assert info["status"] == "done", info
            # one retry layer: one PUT per attempt (boto3 does not retry underneath Dramatiq)
            store, pid = jobs[job]
            puts = proxy.requests[("PUT", f"/{r2.bucket}/stores/{store}/products/{pid}/copy.json")]
            assert info["attempts"] == times + 1 == puts, (info, puts)
        # and a storefront never saw half a theme
        assert watcher.reads > 0 and not theme_problems, theme_problems
        for job in (ok1, ok2):
            store = themes[job]
            assert outcome.infos[job]["status"] == "done", outcome.infos[job]
            pointer = json.loads(env.reader.get(f"themes/{store}/current.json").body)
            assert pointer["build_id"] == job
            listed = json.loads(env.reader.get(f"themes/{store}/builds/{job}/theme.json").body)["files"]
            assert all(env.reader.exists(f"themes/{store}/builds/{job}/{p}") for p in listed)
        # and the clashing build failed with its reason, leaving no pointer to it
        info = outcome.infos[clash]
        assert info["status"] == "failed" and "already exists with different content" in info["error"], info
        assert not env.reader.exists("themes/kiids-kingdom/current.json")
        assert not env.reader.exists(f"themes/kiids-kingdom/builds/{clash}/theme.json")
        assert proxy.pending() == 0
