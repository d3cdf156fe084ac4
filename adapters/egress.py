"""Where the service may send callbacks: http(s) URLs, and by default no private addresses.

A callback URL is chosen by a caller; without this check a store's token could make the
workers POST to loopback, link-local (cloud metadata) or private-network services. Set
WEBHOOK_ALLOW_PRIVATE_HOSTS=true where receivers legitimately live on such addresses
(development, tests, a private deployment).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from adapters.errors import InvalidInput

MAX_URL_CHARS = 2048


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def check_callback_url(url: str, *, allow_private: bool, resolve: bool = False) -> str:
    """Return `url` if callbacks may go there, else raise `InvalidInput` saying why.

    With `resolve`, the host name is looked up and every address it resolves to is checked
    (the worker does this right before delivering; the API checks literal addresses only).
    """
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"callback_url is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("callback_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("callback_url must not carry credentials (user:password@)")
    if allow_private:
        return url
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidInput(_private(host))
    try:
        if _blocked(host):
            raise InvalidInput(_private(host))
        return url
    except ValueError:
        pass  # a name, not an address literal
    if resolve:
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise InvalidInput(f"callback_url host {host!r} does not resolve: {exc}") from None
        for info in infos:
            if _blocked(str(info[4][0])):
                raise InvalidInput(_private(f"{host} ({info[4][0]})"))
    return url


def _private(host: str) -> str:
    return (
        f"callback_url host {host} is a loopback, private or link-local address; callbacks go to "
        "public addresses only (WEBHOOK_ALLOW_PRIVATE_HOSTS=true allows others)"
    )
