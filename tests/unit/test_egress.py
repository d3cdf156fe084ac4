"""Callbacks reach only public addresses, and connect to the very address that was checked."""

from __future__ import annotations

import pytest

from adapters.egress import REFUSED_PRIVATE, blocked, check_callback_url, pin
from adapters.errors import InvalidInput

EMBEDDED_LOOPBACK = ["::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:0:7f00:1", "::ffff:127.0.0.1"]


@pytest.mark.parametrize("address", [*EMBEDDED_LOOPBACK, "127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
def test_private_addresses_are_blocked_in_every_form(address: str) -> None:
    assert blocked(address)


@pytest.mark.parametrize("address", ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "64:ff9b:1::1"])
def test_teredo_and_local_use_nat64_are_refused_outright(address: str) -> None:
    assert blocked(address)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::1111", "64:ff9b::808:808", "2002:5db8:d822::"]
)
def test_public_addresses_pass_including_nat64_and_6to4_of_public_ones(address: str) -> None:
    assert not blocked(address)


@pytest.mark.parametrize("address", EMBEDDED_LOOPBACK)
def test_literal_embedded_loopback_urls_are_refused_at_submit(address: str) -> None:
    with pytest.raises(InvalidInput, match="private"):
        check_callback_url(f"http://[{address}]:8080/hook", allow_private=False)


def test_a_name_is_resolved_once_and_the_checked_address_is_pinned() -> None:
    # Given a resolver that answers a public address first and loopback after (DNS rebinding)
    answers = [["93.184.216.34"], ["127.0.0.1"]]
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[len(calls) - 1]

    # When a delivery pins the URL
    target = pin("https://hooks.example.com:8443/in?x=1", allow_private=False, resolver=rebinding)
    # Then it asked once, connects to the checked address, and names the host for Host and SNI
    assert calls == ["hooks.example.com"]
    assert target.url == "https://93.184.216.34:8443/in?x=1"
    assert target.headers == {"Host": "hooks.example.com:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.com"}


def test_a_name_with_any_private_answer_is_refused_tersely() -> None:
    with pytest.raises(InvalidInput) as caught:
        pin(
            "https://mixed.example.com/",
            allow_private=False,
            resolver=lambda h, p: ["93.184.216.34", "10.0.0.5"],
        )
    assert str(caught.value) == REFUSED_PRIVATE


def test_ipv6_answers_are_bracketed_in_the_pinned_url() -> None:
    target = pin("http://v6.example.com/h", allow_private=False, resolver=lambda h, p: ["2606:4700::1111"])
    assert target.url == "http://[2606:4700::1111]/h" and target.headers == {"Host": "v6.example.com"}
