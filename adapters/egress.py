"""Where the service may send callbacks: http(s) URLs, and by default public addresses only.

A callback URL is chosen by a caller; without this check a store's token could make the
workers POST to loopback, link-local (cloud metadata) or private-network services. Set
WEBHOOK_ALLOW_PRIVATE_HOSTS=true where receivers legitimately live on such addresses
(development, tests, a private deployment).

The check resolves the name once and the delivery connects to the address it checked
(`Pinned`): resolving again at connect time let a name that answered a public address first
and 127.0.0.1 second (DNS rebinding) take a signed POST to loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from adapters.errors import InvalidInput

MAX_URL_CHARS = 2048
REFUSED_PRIVATE = "refused: private address"

# IPv6 ranges that carry an IPv4 address in their last 32 bits (checked as that address).
_EMBEDDING_V4 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated), e.g. ::127.0.0.1
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT), e.g. ::ffff:0:7f00:1
        "64:ff9b::/96",  # NAT64 well-known prefix
    )
)
# Ranges refused outright: local-use NAT64 and Teredo tunnel to wherever their operator says.
_REFUSED_V6 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "2001::/32"))


def blocked(address: str) -> bool:
    """True for loopback, private, link-local, multicast and reserved addresses, in any form."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return True
        if any(ip in net for net in _EMBEDDING_V4):
            return blocked(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        if ip.sixtofour is not None:  # 2002::/16 carries the IPv4 address after the prefix
            return blocked(str(ip.sixtofour))
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class Pinned:
    """A checked URL rewritten to the address that passed the check; send Host and SNI as `host`."""

    url: str
    host: str
    address: str | None  # None: no pinning (private hosts allowed)

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.host_header} if self.address else {}

    @property
    def host_header(self) -> str:
        parts = urlsplit(self.url)
        default = {"http": 80, "https": 443}[parts.scheme]
        port = parts.port
        return self.host if port in (None, default) else f"{self.host}:{port}"

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.host} if self.address else {}


def _parse(url: str) -> tuple[str, str]:
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"callback_url is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("callback_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("callback_url must not carry credentials (user:password@)")
    return parts.scheme, parts.hostname


def check_callback_url(url: str, *, allow_private: bool) -> str:
    """Return `url` if its form is allowed and its host is not a private literal; else `InvalidInput`.

    The API checks this at submit time; names are resolved only when delivering (`pin`).
    """
    _, host = _parse(url)
    if allow_private:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidInput(_private(host))
    try:
        if blocked(host):
            raise InvalidInput(_private(host))
    except ValueError:
        pass  # a name, not an address literal
    return url


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidInput(f"callback_url host {host!r} does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def pin(url: str, *, allow_private: bool, resolver: Callable[[str, int], list[str]] = resolve) -> Pinned:
    """Resolve `url`'s host once, refuse it if any address is private, and pin the first address."""
    check_callback_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = str(parts.hostname)
    if allow_private:
        return Pinned(url, host, None)
    addresses = resolver(host, parts.port or (443 if parts.scheme == "https" else 80))
    if not addresses or any(blocked(a) for a in addresses):
        raise InvalidInput(REFUSED_PRIVATE)
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return Pinned(urlunsplit(parts._replace(netloc=netloc)), host, address)


def _private(host: str) -> str:
    return (
        f"callback_url host {host} is a loopback, private or link-local address; callbacks go to "
        "public addresses only (WEBHOOK_ALLOW_PRIVATE_HOSTS=true allows others)"
    )
