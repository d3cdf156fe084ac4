"""uvicorn's h11 protocol with a deadline for request headers (`--http entrypoints.api.server:GuardedH11`).

uvicorn times out idle keep-alive connections, but not a request whose headers never finish:
its keep-alive timer is cancelled by the first byte, and a fresh connection has none. Half-sent
headers were held open indefinitely (a slowloris holds a socket and a parser per connection).
Here every connection must complete each request's headers within API_HEADER_TIMEOUT_S of
connecting or of its previous response; otherwise it is closed. Bodies have their own deadline
(API_BODY_TIMEOUT_S, in `limits.BodyLimit`).

This subclasses uvicorn's `H11Protocol` and reads its `conn` (the h11 state machine),
`transport` and `on_response_complete`, which are not a documented API: the test
`tests/integration/test_api_isolation.py::test_half_sent_headers_are_cut_off` fails if a
new uvicorn changes them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from adapters.logs import get_logger
from adapters.settings import get_settings

log = get_logger("api")


class GuardedH11(H11Protocol):
    """`H11Protocol`, closing connections whose request headers are not complete in time."""

    header_timeout_s: float | None = None  # a subclass may set it; else API_HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_deadline_s = self.header_timeout_s or get_settings().api_header_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers get the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self._header_deadline_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        # IDLE: h11 has not yet parsed a whole request line and headers for this cycle.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("api_headers_timeout", client=self.client[0] if self.client else None)
            self.transport.close()
