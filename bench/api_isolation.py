"""Benchmark: one store's `POST /generations` while something else leans on the API.

The API runs as the Procfile's `web` process, on R2 (moto's S3 server behind a proxy this
script can make hang), a private Redis and the dev gateway. One client (store B, in this
process) posts product-copy generations one after another and times them, first alone, then
while load generators in processes of their own:

- read store A's outputs while R2 accepts requests and never answers (45 readers);
- flood `/healthz` without a token (60 clients);
- upload 4 MB catalog-copy bodies (4 clients; each is parsed, then refused for a bad option,
  so the parse is the load and nothing is enqueued).

`python -m bench.api_isolation [--seconds 10] [--api-root PATH]`. `--api-root` runs the API
from another checkout (e.g. a `git worktree` of an older commit) to measure before and after
on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shlex
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.env import ROOT, BenchEnv, Child, _wait, free_port
from bench.report import Section, fmt, load_note

TITLE = "API isolation: another store's POST /generations under load"
A, B = "stanley1913", "electricshop"
OPS = "bench-ops-token-6b1e0c"
BUCKET = "wandstore-themes"


# --- R2 that can hang ------------------------------------------------------------------------


class SwitchProxy:
    """A TCP proxy to moto; while `hang` is set it swallows what clients send and answers nothing."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hang = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and self.hang.is_set():
                    continue  # swallowed: the request never reaches S3, no answer ever comes
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


def start_moto(env: BenchEnv) -> tuple[Child, int]:
    """moto's S3 server as a child of the bench, with the themes bucket created."""
    import boto3

    port = free_port()
    aws = {k: v for k, v in env.env().items() if not k.startswith("AWS_")}
    aws.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    argv = [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"]
    child = env._spawn("moto", argv, aws)
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: env.http.get(url, timeout=1).status_code < 600, "moto", child.proc, 30, child.log_path)
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    return child, port


def start_api(env: BenchEnv, r2_url: str, api_root: Path) -> tuple[Child, str]:
    """The Procfile's `web` line of `api_root`, on a free port, with R2 at `r2_url`."""
    port = free_port()
    line = next(
        c
        for n, _, c in (ln.partition(":") for ln in (api_root / "Procfile").read_text().splitlines())
        if n == "web"
    )
    argv = shlex.split(line.strip().replace("${PORT:-8000}", str(port)))
    if argv[0] == "uvicorn":
        argv[:1] = [sys.executable, "-m", "uvicorn"]
    extra = {
        "OPS_API_TOKEN": OPS,
        "R2_ACCESS_KEY_ID": "testing",
        "R2_SECRET_ACCESS_KEY": "testing",
        "R2_ENDPOINT_URL": r2_url,
        "R2_THEMES_BUCKET": BUCKET,
        "API_RATE_LIMIT": "100000000",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(api_root),
    }
    log_path = env.dir / "api.log"
    log = log_path.open("wb")
    import subprocess

    proc = subprocess.Popen(
        argv, cwd=api_root, stdout=log, stderr=subprocess.STDOUT, env=env.env(**extra), start_new_session=True
    )
    child = Child("api", proc, log_path, log)
    env.children.append(child)
    url = f"http://127.0.0.1:{port}"
    _wait(
        lambda: env.http.get(url + "/openapi.json", timeout=2).status_code == 200, "api", proc, 60, log_path
    )
    return child, url


def add_stores(url: str) -> None:
    """Add stores A and B (`PUT /v1/stores/{store}`, ops token); an API without the route needs none."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {OPS}"}) as client:
        for store in (A, B):
            fields = {"shop_domain": f"{store}.myshopify.com", "currency": "GBP"}
            response = client.put(f"/v1/stores/{store}", json=fields)
            if response.status_code not in (200, 201, 404, 405):
                raise RuntimeError(f"could not add store {store}: {response.status_code} {response.text}")


# --- load, in processes of their own ------------------------------------------------------------


def _product(store: str, index: int) -> dict[str, Any]:
    path = ROOT / "data" / "shopify" / f"{store}.products.json"
    products: list[dict[str, Any]] = json.loads(path.read_text())["products"]
    return products[index % len(products)]


def _load(kind: str, url: str, token: str, clients: int, stop: Any, out: Any) -> None:
    """A load generator: `clients` threads repeating one kind of request until `stop` is set."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = b""
    if kind == "upload":
        products = json.loads((ROOT / "data" / "shopify" / f"{A}.products.json").read_text())["products"]
        batch: list[Any] = []
        size = 0
        for i in range(10**6):  # products until the body is just under API_MAX_BODY_BYTES (4 MiB)
            item = products[i % len(products)]
            size += len(json.dumps(item)) + 2
            if size > 4 * 2**20 - 4096:
                break
            batch.append(item)
        body = json.dumps({"products": batch, "options": {"locale": "not a locale"}}).encode()
        headers["Content-Type"] = "application/json"

    def one(client: httpx.Client) -> str:
        if kind == "read":
            r = client.get(f"/v1/stores/{A}/outputs/stores/{A}/products/1/copy.json")
        elif kind == "healthz":
            r = client.get("/healthz")
        else:
            r = client.post(f"/v1/stores/{A}/catalog-copy", content=body)
        code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
        return f"{r.status_code} {code}".strip()

    def loop() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            while not stop.is_set():
                try:
                    outcome = one(client)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with lock:
                    counts[outcome] += 1

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(timeout=150)
    out.put(dict(counts))


@dataclass
class Scenario:
    name: str
    kind: str | None  # None: the victim alone
    clients: int = 0
    processes: int = 1
    before: Callable[[], None] = lambda: None


@dataclass
class Result:
    name: str
    latencies_ms: list[float]
    errors: Counter[str]
    load: Counter[str] = field(default_factory=Counter)
    load_s: float = 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q * len(data)))]


def victim(url: str, token: str, seconds: float, min_samples: int = 5, cap_s: float = 150) -> Result:
    """Store B's generations, one after another: at least `seconds` and `min_samples` requests."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        i = 0
        while True:
            elapsed = time.monotonic() - started
            if (elapsed >= seconds and len(latencies) >= min_samples) or elapsed >= cap_s:
                break
            body = {"pipeline": "product_copy", "input": {"product": _product(B, i)}}
            t0 = time.perf_counter()
            try:
                response = client.post(f"/v1/stores/{B}/generations", json=body)
                if response.status_code != 202:
                    errors[str(response.status_code)] += 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
            latencies.append((time.perf_counter() - t0) * 1000)
            i += 1
    return Result("", latencies, errors)


def measure(url: str, tokens: dict[str, str], scenario: Scenario, seconds: float) -> Result:
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    procs = []
    scenario.before()
    if scenario.kind is not None:
        token = "" if scenario.kind == "healthz" else tokens[A]
        per = scenario.clients // scenario.processes
        for _ in range(scenario.processes):
            p = ctx.Process(target=_load, args=(scenario.kind, url, token, per, stop, out), daemon=True)
            p.start()
            procs.append(p)
        time.sleep(2.0)  # the load reaches its steady state before the victim starts
    load_started = time.monotonic()
    result = victim(url, tokens[B], seconds)
    result.name = scenario.name
    stop.set()
    for p in procs:
        result.load.update(out.get(timeout=200))
        p.join(timeout=10)
    result.load_s = time.monotonic() - load_started + (2.0 if procs else 0.0)
    return result


def _describe_load(r: Result, scenario: Scenario) -> str:
    if scenario.kind is None:
        return "none"
    total = sum(r.load.values())
    top = ", ".join(f"{k}: {v:,}" for k, v in r.load.most_common(3))
    return f"{scenario.clients} clients, {total / r.load_s:,.0f} req/s ({top})"


def run(seconds: float = 10.0, api_root: Path = ROOT, progress: bool = True) -> Section:
    from adapters.tokens import SCOPES, TokenStore

    with BenchEnv() as env:
        _, moto_port = start_moto(env)
        proxy = SwitchProxy(moto_port)
        try:
            _, url = start_api(env, proxy.url, api_root)
            store = TokenStore(env.redis)
            tokens = {s: store.create(s, "bench", SCOPES).token for s in (A, B)}
            add_stores(url)
            scenarios = [
                Scenario("healthy", None),
                Scenario("/healthz flooded", "healthz", clients=60, processes=2),
                Scenario("4 MB uploads", "upload", clients=4),
                Scenario("R2 hangs", "read", clients=45, before=proxy.hang.set),
            ]
            results = []
            for scenario in scenarios:
                if progress:
                    print(f"measuring: {scenario.name} ...", file=sys.stderr, flush=True)
                results.append(measure(url, tokens, scenario, seconds))
        finally:
            proxy.close()
    base = results[0]
    rows = [
        [
            r.name,
            f"{len(r.latencies_ms):,}",
            fmt(r.pct(0.5), 1),
            fmt(r.pct(0.99), 1),
            f"x{r.pct(0.5) / base.pct(0.5):,.1f}" if base.latencies_ms else "",
            ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0",
            _describe_load(r, s),
        ]
        for r, s in zip(results, scenarios, strict=True)
    ]
    where = "this checkout" if api_root == ROOT else str(api_root)
    return Section(
        title=TITLE,
        command="python -m bench.api_isolation" + (f" --api-root {api_root}" if api_root != ROOT else ""),
        columns=["while", "B's POSTs", "p50 ms", "p99 ms", "p50 vs healthy", "B's errors", "the load"],
        rows=rows,
        notes=[
            f"The API is the Procfile's `web` process of {where}, on R2 (moto behind a proxy that "
            "swallows requests in the last row), a private Redis and the dev gateway; store B posts "
            f"product_copy generations one after another for {seconds:g} s per row (at least 5).",
            load_note(),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_isolation", description=TITLE)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of B's requests per row")
    parser.add_argument("--api-root", type=Path, default=ROOT, help="run the API from this checkout")
    args = parser.parse_args(argv)
    run(args.seconds, args.api_root.resolve()).print()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
