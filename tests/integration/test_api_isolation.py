"""A slow dependency cannot stall the API: per-dependency threads and breakers, cached /healthz,
per-route body caps, header and body deadlines, and the auth path's 503s.

Hung dependencies are `Blackhole`s: real sockets that accept and never answer.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import sample_products
from tests.fixtures.api import OPS_TOKEN, ApiHarness, RunningApi, serve_app
from tests.fixtures.blackhole import Blackhole

A, B = "stanley1913", "electricshop"


def copy_request(store: str, index: int) -> dict[str, Any]:
    return {"pipeline": "product_copy", "input": {"product": sample_products(store)[index]}}


@contextmanager
def api_with(api: ApiHarness, store: Any = None, **overrides: Any) -> Iterator[tuple[RunningApi, Any]]:
    """An API server of its own, on the session's Redis, with these settings (and object store)."""
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app

    settings = load_settings(ops_api_token=OPS_TOKEN, api_rate_limit=1_000_000, **overrides)
    ctx = compose.api_context(settings, store=store if store is not None else api.ctx.store)
    with serve_app(create_app(ctx)) as running:
        yield running, ctx
    ctx.pools.close()


@pytest.fixture
def hung_s3() -> Iterator[Blackhole]:
    with Blackhole() as hole:
        yield hole


def _hung_r2(hole: Blackhole) -> Any:
    from adapters.store import R2Store

    # No retries inside, and a read timeout of its own that outlasts every wait in the test.
    return R2Store("hung-bucket", hole.url, "testing", "testing", read_timeout=20, max_attempts=0)


# --- R2 hangs ----------------------------------------------------------------------------


def test_a_hanging_object_store_delays_no_other_store(api: ApiHarness, hung_s3: Blackhole) -> None:
    # Given an API whose object store accepts connections and never answers
    with api_with(api, _hung_r2(hung_s3), api_store_timeout_s=3, api_store_concurrency=4) as (running, ctx):
        a = ctx.tokens.create(A, "storefront").token
        b = ctx.tokens.create(B, "storefront").token
        url = f"{running.url}/v1/stores/{A}/outputs/stores/{A}/products/1/copy.json"
        # When store A makes 60 output reads at once (more than AnyIO's 40 shared threads)
        with ThreadPoolExecutor(60) as pool:
            reads: list[Future[httpx.Response]] = [
                pool.submit(httpx.get, url, headers={"Authorization": f"Bearer {a}"}, timeout=30)
                for _ in range(60)
            ]
            hung_s3.wait_accepted(4)  # the store's 4 threads are stuck in it
            # Then store B's generations, which never touch the store, are answered meanwhile
            started = time.monotonic()
            with running.client(b) as client:
                posts = [
                    client.post(f"/v1/stores/{B}/generations", json=copy_request(B, i)) for i in range(5)
                ]
                status = client.get(posts[0].json()["status_url"])
            elapsed = time.monotonic() - started
            assert [p.status_code for p in posts] == [202] * 5, posts[0].text
            assert status.status_code == 200
            assert not all(r.done() for r in reads), "B was answered only after A's reads ended"
            answers = [r.result() for r in reads]
    assert elapsed < 2.5, elapsed
    # And A's reads end in 503s with Retry-After: timed out, refused as over the queue, or
    # refused at once by the open breaker; no more than 4 ever reached the store
    assert {r.status_code for r in answers} == {503}
    assert all(int(r.headers["retry-after"]) >= 1 for r in answers)
    codes = {r.json()["error"]["code"] for r in answers}
    assert codes == {"store_error"}
    messages = " | ".join(sorted({r.json()["error"]["message"].split(";")[0] for r in answers}))
    assert "did not answer within 3s" in messages, messages
    assert hung_s3.accepted == 4


def test_the_breaker_opens_after_failures_and_answers_at_once(api: ApiHarness, hung_s3: Blackhole) -> None:
    # Given an API whose store hangs, with a short wait for it
    with api_with(api, _hung_r2(hung_s3), api_store_timeout_s=0.3) as (running, _):
        ops = running.client(OPS_TOKEN)
        url = f"/v1/stores/{A}/outputs/stores/{A}/x.json"
        # When five reads in a row time out
        timed_out = [ops.get(url) for _ in range(5)]
        # Then the next is refused at once, without a thread or a connection to the store
        started = time.monotonic()
        refused = ops.get(url)
        elapsed = time.monotonic() - started
    assert all("did not answer within 0.3s" in r.json()["error"]["message"] for r in timed_out)
    assert refused.status_code == 503 and elapsed < 0.25
    assert "paused" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 5
    assert hung_s3.accepted == 5


# --- /healthz ----------------------------------------------------------------------------


class CountingGateway:
    """An HTTP server that answers 404 to every GET and counts them (a reachable gateway)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        counter = self
        self.gets = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.gets += 1
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/acct/gw"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_healthz_answers_from_the_background_check(api: ApiHarness) -> None:
    gateway = CountingGateway()
    try:
        # Given an API checking its dependencies once a minute
        with api_with(api, ai_gateway_url=gateway.url, api_health_interval_s=60) as (running, _):
            # When /healthz is asked 50 times, by a client without a token
            anonymous = httpx.Client(base_url=running.url)
            answers = [anonymous.get("/healthz") for _ in range(50)]
            anonymous.close()
    finally:
        gateway.close()
    # Then every answer is "up" and the gateway was called once, not 50 times
    assert {(r.status_code, r.text) for r in answers} == {(200, '{"status":"up"}')}
    assert gateway.gets == 1


def test_healthz_is_down_when_the_store_hangs_and_still_answers_fast(
    api: ApiHarness, hung_s3: Blackhole
) -> None:
    # Given a store that hangs
    with api_with(api, _hung_r2(hung_s3), api_health_interval_s=0.2) as (running, _):
        first = httpx.get(f"{running.url}/healthz", timeout=10)  # waits for the first round (2 s)
        # When /healthz is asked again while the store's check is still stuck
        started = time.monotonic()
        again = httpx.get(f"{running.url}/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        elapsed = time.monotonic() - started
    # Then it is down, at once, and ops are told the store did not answer
    assert first.status_code == again.status_code == 503 and first.json() == {"status": "down"}
    assert elapsed < 1.0
    store = again.json()["checks"]["object_store"]
    assert not store["ok"] and ("within 2s" in store["detail"] or "not returned" in store["detail"])
    assert again.json()["checks"]["redis"]["ok"]
    # And one stuck probe is never joined by another
    assert hung_s3.accepted == 1


def test_healthz_reports_a_full_disk(api: ApiHarness, tmp_path: Any) -> None:
    from adapters.store import LocalStore

    # Given a local store on a disk with less free space than LOCAL_STORE_MIN_FREE_BYTES asks
    full = 2**62
    with api_with(api, LocalStore(tmp_path), local_store_min_free_bytes=full) as (running, _):
        public = httpx.get(f"{running.url}/healthz")
        ops = httpx.get(f"{running.url}/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    # Then the store is down, and only ops learn why (and never where the folder is)
    assert public.status_code == 503 and public.json() == {"status": "down"}
    detail = ops.json()["checks"]["object_store"]["detail"]
    assert "LOCAL_STORE_MIN_FREE_BYTES" in detail and str(tmp_path) not in public.text


# --- bodies and headers ---------------------------------------------------------------------


def test_bodies_are_capped_per_route(api: ApiHarness) -> None:
    generation = {**copy_request(A, 0), "options": {"brand_voice": "x" * 6000}}
    batch = {"products": [p for p in sample_products(A) if 6000 < len(str(p)) < 30_000][:1]}
    # Given generations capped at 4 KB, catalog uploads at 64 KB
    with api_with(api, api_generation_max_body_bytes=4096, api_max_body_bytes=65536) as (running, _):
        ops = running.client(OPS_TOKEN)
        # When a 6 KB generation, a larger batch and a 70 KB theme activation are sent
        too_big = ops.post(f"/v1/stores/{A}/generations", json=generation)
        uploaded = ops.post(f"/v1/stores/{A}/catalog-copy", json=batch)
        nothing_expected = ops.post(
            f"/v1/stores/{A}/themes/00000000-0000-4000-8000-000000000000/activate", content=b" " * 70_000
        )
    # Then the generation is refused naming its own limit, the batch is taken, the activation refused
    assert too_big.status_code == 413
    assert "4096 bytes (API_GENERATION_MAX_BODY_BYTES)" in too_big.json()["error"]["message"]
    assert uploaded.status_code == 202, uploaded.text
    assert nothing_expected.status_code == 413


def test_a_large_body_is_parsed_and_validated_like_a_small_one(api: ApiHarness) -> None:
    # Given a catalog-copy body over the inline-parse size (parsed on the parse threads)
    from entrypoints.api.common import INLINE_PARSE_BYTES

    products = sample_products(B)
    body = {"products": [*products, "not a product"]}
    assert len(httpx.Request("POST", "/", json=body).content) > INLINE_PARSE_BYTES
    with api_with(api) as (running, _), running.client(OPS_TOKEN) as ops:
        accepted = ops.post(f"/v1/stores/{B}/catalog-copy", json=body)
        invalid = ops.post(f"/v1/stores/{B}/catalog-copy", json={**body, "colour": "red"})
    # Then it is submitted (or refused, naming the field) exactly as a small one would be
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["total"] == len(products) + 1 and accepted.json()["failed"] == 1
    assert invalid.status_code == 422 and invalid.json()["error"]["details"][0]["field"] == "colour"


@contextmanager
def guarded_server(app: Any, header_timeout_s: float) -> Iterator[str]:
    """`app` under uvicorn with the Procfile's protocol class (`--http entrypoints.api.server:GuardedH11`)."""
    from entrypoints.api.server import GuardedH11

    protocol = type("QuickGuardedH11", (GuardedH11,), {"header_timeout_s": header_timeout_s})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=protocol, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a starting server, not a test sleep
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `sock` (fails if it sends anything or keeps it open)."""
    sock.settimeout(seconds)
    started = time.monotonic()
    assert sock.recv(1024) == b""
    return time.monotonic() - started


def test_half_sent_headers_are_cut_off(api: ApiHarness) -> None:
    from entrypoints.api import create_app

    with guarded_server(create_app(api.ctx), header_timeout_s=0.5) as address:
        host, port = address.split(":")
        # Given a client that sends half its headers, and one that sends a request and then half another
        half = socket.create_connection((host, int(port)))
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        second = socket.create_connection((host, int(port)))
        second.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        second.settimeout(5)
        first_answer = b""
        while not first_answer.endswith(b"}"):
            first_answer += second.recv(4096)
        second.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        # Then both connections are closed by the server soon after the deadline
        waited = _closed_within(half, 5)
        _closed_within(second, 5)
        half.close()
        second.close()
        # And a request sent whole is served as usual
        with httpx.Client(base_url=f"http://{address}") as client:
            whole = client.get("/healthz")
    assert first_answer.startswith(b"HTTP/1.1 200")
    assert waited < 3
    assert whole.status_code == 200


def test_a_slow_body_gets_408_and_the_connection_closed(api: ApiHarness) -> None:
    with api_with(api, api_body_timeout_s=0.5) as (running, _):
        host, port = running.url.removeprefix("http://").split(":")
        # Given a client that announces 200 bytes of body and sends 10
        conn = socket.create_connection((host, int(port)))
        conn.sendall(
            f"POST /v1/stores/{A}/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPS_TOKEN}\r\n"
            'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"pipeline"'.encode()
        )
        conn.settimeout(5)
        started = time.monotonic()
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        elapsed = time.monotonic() - started
        conn.close()
    # Then it gets 408 after the deadline, naming the setting, and the server closes the connection
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"API_BODY_TIMEOUT_S" in answer and b"body_timeout" in answer
    assert elapsed < 3


# --- the auth path --------------------------------------------------------------------------


@pytest.mark.parametrize("redis_down", ["refusing", "hanging"])
def test_the_auth_path_answers_503_with_retry_after_when_redis_is_down(
    api: ApiHarness, redis_down: str
) -> None:
    from adapters.redis_conn import AsyncRedis
    from entrypoints.api import create_app
    from entrypoints.api.limits import RateLimiter
    from tests.fixtures.redis import free_port

    with Blackhole() as hole:
        port = hole.port if redis_down == "hanging" else free_port()
        # Given an API whose Redis refuses connections, or accepts them and never answers
        down = AsyncRedis(f"redis://127.0.0.1:{port}/0")
        ctx = dataclasses.replace(
            api.ctx,
            settings=api.ctx.settings.model_copy(update={"api_redis_timeout_s": 0.5}),
            aredis=down,
            limiter=RateLimiter(down, 100, 60, timeout_s=0.5),
        )
        with serve_app(create_app(ctx)) as running:
            # When a store's token is presented
            token = api.token_for(A)
            started = time.monotonic()
            response = running.client(token).get(f"/v1/stores/{A}/outputs/stores/{A}/x.json")
            elapsed = time.monotonic() - started
    # Then the answer is a prompt 503 that says when to retry
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < 2.5
