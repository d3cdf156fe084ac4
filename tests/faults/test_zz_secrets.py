"""Recognizable fake secrets never show up in a log line, an error, an output, a metric or the API.

Runs last in the fault suite (hence the name): besides its own jobs, it scans everything the
suite's worker processes wrote, with the fake secrets configured the whole time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipelines.dead_letters import DeadLetters
from tests.faults.conftest import R2World
from tests.faults.env import FAKE_R2, FAKE_SECRETS, FaultEnv, sample_products, unique_product
from tests.faults.report import hostile
from tests.faults.s3proxy import Rule
from tests.faults.worker import wait_until
from tests.fixtures.redis import free_port

SECRETS = {**FAKE_SECRETS, **FAKE_R2}
BRIEF = {"description": "Plain-spoken goods for everyday use; calm, warm and trustworthy."}


def fragments(secret: str) -> list[str]:
    """The secret, and pieces of it long enough to identify it (a half-redacted secret is a leak)."""
    return [secret, secret[:14], secret[-10:]]


def leaks(where: str, text: str) -> list[str]:
    return [
        f"{where}: {name}" for name, value in SECRETS.items() for piece in fragments(value) if piece in text
    ]


def run_every_pipeline(env: FaultEnv, r2: R2World) -> list[str]:
    """Product copy, a theme build and personalization, some made to fail; returns the job ids."""
    from pipelines.submit import submit_personalize, submit_theme_build
    from pipelines.theme_build import save_catalog

    jobs = []
    for world in (env, r2.env):
        world.reset()
        save_catalog(world.reader, "stanley1913", {"products": sample_products("stanley1913")[:8]})
        # failures that carry provider and store error text: a 401 and a 400 from the gateway
        world.gateway.faults(
            [{"kind": "401", "match": "secretsauth"}, {"kind": "400", "match": "secretsbad"}]
        )
        for i, tag in enumerate(("secretsok", "secretsauth", "secretsbad")):
            store, product = unique_product(tag, i)
            jobs.append(world.submit_copy(store, product))
        jobs.append(submit_theme_build(world.broker, world.status, "stanley1913", BRIEF))  # type: ignore[arg-type]
        jobs.append(
            submit_personalize(world.broker, world.status, "stanley1913", "shopper-s", {"segment": "gifts"})
        )  # type: ignore[arg-type]
    # and R2 refusing the credentials outright
    r2.proxy.plan(Rule("PUT", "secretsdenied", "403", 10))
    store, product = unique_product("secretsdenied", 3)
    jobs.append(r2.env.submit_copy(store, product))
    for world in (env, r2.env):
        world.wait_terminal([j for j in jobs if world.status.get(j)], timeout_s=90)
    return jobs


def api_process(r2: R2World, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The web process as the Procfile runs it, with the fake secrets configured."""
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if k not in SECRETS},
        **SECRETS,
        "REDIS_URL": r2.env.redis_server.url,
        "AI_GATEWAY_URL": r2.env.gateway.base_url,
        "R2_ENDPOINT_URL": r2.proxy.url,
        "R2_THEMES_BUCKET": r2.bucket,
        "LOG_LEVEL": "DEBUG",
    }
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    proc = subprocess.Popen(
        [
            uvicorn,
            "entrypoints.api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "debug",
        ],
        env=environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited: {log.read_text(errors='replace')[-2000:]}")
        return _answers(url)

    wait_until(up, 60, "the API to start")
    return proc, url


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_fake_secrets_never_leak(fault_world: FaultEnv, r2_world: R2World, tmp_path: Path) -> None:
    tally = hostile(
        "secrets in logs, errors, outputs, metrics",
        "AI_GATEWAY_TOKEN, OPENAI_API_KEY, ANTHROPIC_API_KEY, R2 keys, OPS_API_TOKEN configured (fake); "
        "every pipeline run, made to fail, scanned",
    )
    env, r2 = fault_world, r2_world
    for world in (env, r2.env):
        world.start_worker()
    # Given every pipeline run (and failed) by workers holding recognizable fake secrets
    jobs = run_every_pipeline(env, r2)
    found: list[str] = []
    scanned = 0

    def scan(where: str, text: str) -> None:
        nonlocal scanned
        scanned += 1
        found.extend(leaks(where, text))

    # When everything they produced is read: every log line both workers wrote this session
    for world in (env, r2.env):
        scan(f"{world.worker.log_path}", world.worker.output())
        # every job status (errors included) and every dead letter's reason
        for key in world.client.scan_iter(match="wandstore:job:*", count=1000):
            scan(key.decode(), str(world.client.hgetall(key)))
        for letter in DeadLetters(world.client).list():
            scan(f"dead letter {letter.id}", str(letter.detail()))
        # every published object
        for key, body in world.objects().items():
            scan(key, body.decode("utf-8", "replace"))
        # the worker's metrics
        scan("metrics", httpx.get(f"http://127.0.0.1:{world.metrics_port}/metrics", timeout=10).text)
        # and what ops see in the CLI
        cli = str(Path(sys.executable).with_name("wandstore-agents"))
        environ = {**os.environ, **SECRETS, "REDIS_URL": world.redis_server.url}
        for args in (["dlq", "list"], ["status", jobs[1], "--json"], ["costs", "--json"]):
            done = subprocess.run(
                [cli, *args], env=environ, capture_output=True, text=True, timeout=60, check=False
            )
            scan(f"wandstore-agents {' '.join(args)}", done.stdout + done.stderr)
    # and the web process, asked with good, bad and missing tokens
    proc, url = api_process(r2, tmp_path / "api.log")
    try:
        ops = {"Authorization": f"Bearer {SECRETS['OPS_API_TOKEN']}"}
        for headers in (ops, {"Authorization": "Bearer wrong"}, {}):
            for path in (
                "/v1/stores/stanley1913/costs",
                f"/v1/generations/{jobs[1]}",
                "/metrics",
                "/healthz",
            ):
                response = httpx.get(url + path, headers=headers, timeout=10)
                scan(f"GET {path}", response.text + str(dict(response.headers)))
        response = httpx.post(url + "/v1/stores/stanley1913/generations", headers=ops, json={"pipeline": "x"})
        scan("POST generations", response.text)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    time.sleep(0.1)  # the web process's last lines reach its log file
    scan("web process log", (tmp_path / "api.log").read_text(errors="replace"))

    tally.cases += scanned
    tally.unsafe += len(found)
    tally.notes = {"jobs run": len(jobs), "texts scanned": scanned, "secrets": len(SECRETS)}
    # Then no secret, nor a telling piece of one, appears anywhere
    assert not found, sorted(set(found))
    # and the failures really happened (the scan covered error paths, not just the happy one)
    errors = [str(world.status.get(j) or {}).lower() for world in (env, r2.env) for j in jobs]
    assert any("401" in e for e in errors) and any("access denied" in e for e in errors)
