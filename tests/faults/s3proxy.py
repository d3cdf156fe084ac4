"""A failing S3 stand-in: moto's server behind a proxy that answers planned faults and counts requests.

Faults match a method and a substring of the path, `times` times, in order:
`503`/`500` (an S3 error body, nothing written), `412` (PreconditionFailed, nothing written),
`403` (AccessDenied, nothing written),
`drop` (the connection closes with no answer, nothing written), and `late` (the request is
held past the client's timeout and then written anyway: the client never learns it
succeeded).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "412": (412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"),
    "403": (403, "AccessDenied", "Access Denied"),
}


@dataclass
class Rule:
    method: str
    path_contains: str
    kind: str
    times: int = 1
    hold_s: float = 0.0


class FailingS3:
    """A threaded HTTP proxy to `upstream` with a fault plan and per-(method, path) request counts."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.rules: list[Rule] = []
        self.requests: Counter[tuple[str, str]] = Counter()
        self.served: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def plan(self, *rules: Rule) -> None:
        with self.lock:
            self.rules.extend(rules)

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.requests.clear()
            self.served.clear()

    def pending(self) -> int:
        with self.lock:
            return sum(r.times for r in self.rules)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _take(self, method: str, path: str) -> Rule | None:
        with self.lock:
            self.requests[(method, path.split("?")[0])] += 1
            for rule in self.rules:
                if rule.method == method and rule.path_contains in path:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                    self.served[rule.kind] += 1
                    return rule
        return None

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        rule = self._take(req.command, req.path)
        if rule is not None and rule.kind in _ERRORS:
            status, code, message = _ERRORS[rule.kind]
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>"
            ).encode()
            req.send_response(status)
            req.send_header("Content-Type", "application/xml")
            req.send_header("Content-Length", str(len(payload)))
            req.end_headers()
            req.wfile.write(payload)
            return
        if rule is not None and rule.kind == "drop":
            req.close_connection = True
            req.connection.close()
            return
        if rule is not None and rule.kind == "late":
            time.sleep(rule.hold_s)  # the client gives up meanwhile; the write still happens
        self._forward(req, body)

    def _forward(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in ("connection",)}
            conn.request(req.command, req.path, body=body if body else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            try:
                req.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        req.send_header(k, v)
                # A HEAD answer carries the object's length, not its own (empty) body's.
                length = resp.getheader("Content-Length") if req.command == "HEAD" else None
                req.send_header("Content-Length", length or str(len(data)))
                req.end_headers()
                if req.command != "HEAD":
                    req.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a `late` fault): the write above happened anyway
        finally:
            conn.close()
