"""The preview a merchant opens: a Spanish store's page in euros with its product photos and the palette
it asked for, shared by a signed link that opens in a browser without a token (HTTP and Chromium)."""

from __future__ import annotations

import colorsys
import hashlib
import html
import os
import shutil
import ssl
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import sample_products
from tests.fixtures.api import ApiHarness
from tests.fixtures.stores import add_store
from tests.fixtures.tls import self_signed
from tests.helpers import arun

STORE = "tienda-azul"
BRIEF = {
    "description": "Tazas y botellas resistentes para el campo y el día a día; cálida y directa.",
    "audience": "campistas y gente que va al trabajo",
    "palette_hint": "azul marino y azul",
}
NBSP = "\xa0"
# What the stand-in CDN paints every product image with: colours no palette here uses.
TILE_COLOURS = ((255, 0, 170), (0, 200, 90), (250, 170, 0))


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


@pytest.fixture
def built(api: ApiHarness, gateway: Any) -> dict[str, Any]:
    """A Spanish store (EUR) added, its catalog saved, and a theme built from a brief with no locale."""
    from entrypoints import compose
    from pipelines.theme_build import build_theme, save_catalog

    svc = compose.services()  # the api fixture points its object store at the API's
    add_store(api.ctx.redis, STORE, shop_domain=f"{STORE}.myshopify.com", currency="EUR", locale="es")
    live = [p for p in sample_products("stanley1913") if any(v.get("available") for v in p["variants"])]
    save_catalog(svc.store, STORE, {"products": live[:12]})
    result = arun(build_theme(svc, STORE, BRIEF))
    prefix = f"themes/{STORE}/builds/{result.build_id}/"
    return {
        "build_id": result.build_id,
        "doc": svc.store.get(prefix + "theme.json").json(),
        "preview": svc.store.get(prefix + "preview.html").body,
        "svc": svc,
    }


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.csp = ""
        self.imgs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        elif tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content") or ""
        elif tag == "img":
            self.imgs.append(a.get("src") or "")
        elif tag == "script":
            self.scripts += 1


def _hue(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(r, g, b)[0] * 360


def _apart(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def test_a_spanish_store_gets_a_spanish_page_in_euros_with_its_photos_and_a_navy_palette(
    built: dict[str, Any],
) -> None:
    doc, preview = built["doc"], built["preview"].decode()
    page = _Page()
    page.feed(preview)
    text = html.unescape(preview)
    # Then the brief took the store's locale and the page is Spanish throughout
    assert doc["locale"] == "es" and doc["brief"]["locale"] == "es" and doc["currency"] == "EUR"
    assert page.lang == "es"
    for word in ("Carrito (0)", "Envíos y devoluciones", "Correo electrónico", "Ver todo"):
        assert word in text, word
    for english in ("Cart (0)", "Shipping and returns", "Email address", "Shop all"):
        assert english not in text, english
    # And the designer, strategist and copywriters were asked for Spanish (the prompts carry it)
    assert doc["meta"]["prompts"]["theme_designer"] == "theme_designer@v2"
    assert doc["meta"]["prompts"]["section_copywriter"] == "section_copywriter@v2"
    # And every product shows its Shopify photo and its price in euros, Spanish style
    shown = [p for p in doc["products"] if p["image"]]
    assert shown and all(p["image"]["src"] in page.imgs for p in shown)
    assert page.imgs and all(urlsplit(src).hostname == "cdn.shopify.com" for src in page.imgs)
    for product in doc["products"]:
        euros = f"{Decimal(product['price']):.2f}".replace(".", ",")
        assert f"{euros}{NBSP}€" in text, product["price"]
    # And the page may load images from Shopify's CDN only, and runs nothing
    assert "img-src https://cdn.shopify.com https://*.myshopify.com/cdn/shop/" in page.csp
    assert "default-src 'none'" in page.csp and page.scripts == 0
    # And the palette follows "azul marino y azul": primary and accent within 30° of blue (240°)
    palette = doc["tokens"]["palette"]
    for role in ("primary", "accent"):
        assert _apart(_hue(palette[role]), 240) <= 30, (role, palette[role])
    hues = doc["checks"]["palette_hint"]["hues"]
    assert [h["role"] for h in hues] == ["primary", "accent"] and all(h["passes"] for h in hues)
    assert [c["name"] for c in doc["checks"]["palette_hint"]["colours"]] == ["azul marino", "azul"]


def test_a_fallback_greets_in_the_shoppers_or_the_stores_language(
    built: dict[str, Any], gateway: Any
) -> None:
    from pipelines.personalize import personalize_shopper

    svc = built["svc"]
    # Given a gateway that fails every call, so personalization falls back to its own words
    gateway.faults([{"kind": "503", "times": 20}])
    # When a shopper who sent no locale, and one who sent French, are personalized
    store_lang = arun(personalize_shopper(svc, STORE, "shopper-es", {"segment": "a", "deadline_ms": 3000}))
    french = arun(
        personalize_shopper(svc, STORE, "shopper-fr", {"segment": "b", "locale": "fr", "deadline_ms": 3000})
    )
    # Then the first is greeted in the store's Spanish, the second in French; neither in English
    first, second = (svc.store.get(p.key).json() for p in (store_lang, french))
    assert first["meta"]["fallback"] == "default" and first["headline"] == "Elegidos para ti"
    assert second["meta"]["fallback"] == "default" and second["headline"] == "Sélectionnés pour vous"


# --- the share link -----------------------------------------------------------------------------


def _client(api: ApiHarness, *scopes: str) -> Any:
    return api.running.client(api.ctx.tokens.create(STORE, "tests", list(scopes)).token)


def test_share_link_opens_the_preview_without_a_token_until_it_expires(
    api: ApiHarness, built: dict[str, Any]
) -> None:
    from adapters.share_links import sign, stored_secret

    build_id = built["build_id"]
    # Given a merchant token that may publish
    merchant = _client(api, "read", "publish")
    # When it asks for a share link
    response = merchant.post(f"/v1/stores/{STORE}/themes/{build_id}/share", params={"expires_in_s": 3600})
    # Then it gets a URL and when it expires
    assert response.status_code == 200, response.text
    link = response.json()
    assert set(link) >= {"url", "expires_at"} and link["expires_at"].endswith("Z")
    # And the URL opens the preview with no token at all, under a strict policy
    anonymous = api.client(None)
    opened = anonymous.get(link["url"])
    assert opened.status_code == 200, opened.text
    assert opened.content == built["preview"] and opened.headers["content-type"].startswith("text/html")
    csp = opened.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "img-src https://cdn.shopify.com https://*.myshopify.com/cdn/shop/" in csp
    assert opened.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in opened.headers["cache-control"]
    # When the signature, the build or the expiry in the link is changed, or the link has expired
    url = urlsplit(link["url"])
    query = dict(part.split("=", 1) for part in url.query.split("&"))
    tampered_sig = link["url"].replace(
        query["sig"], ("A" if query["sig"][0] != "A" else "B") + query["sig"][1:]
    )
    later = link["url"].replace(f"expires={query['expires']}", f"expires={int(query['expires']) + 86400}")
    other_build = link["url"].replace(build_id, "00000000-0000-4000-8000-000000000000")
    expires, sig = sign([stored_secret(api.ctx.redis)], STORE, build_id, ttl_s=-1)
    expired = f"{url.scheme}://{url.netloc}{url.path}?expires={expires}&sig={sig}"
    # Then each is refused with a 403 that says why, in the API's error shape
    for bad, why in (
        (tampered_sig, "does not match"),
        (later, "does not match"),
        (other_build, "does not match"),
        (expired, "expired"),
        (f"{url.scheme}://{url.netloc}{url.path}", "malformed"),
    ):
        refused = anonymous.get(bad)
        assert refused.status_code == 403, (bad, refused.text)
        assert why in refused.json()["error"]["message"], refused.json()


def test_share_needs_the_publish_scope_and_a_published_build(api: ApiHarness, built: dict[str, Any]) -> None:
    build_id = built["build_id"]
    reader = _client(api, "read")
    refused = reader.post(f"/v1/stores/{STORE}/themes/{build_id}/share")
    assert refused.status_code == 403 and "publish" in refused.json()["error"]["message"]
    merchant = _client(api, "publish")
    missing = merchant.post(f"/v1/stores/{STORE}/themes/00000000-0000-4000-8000-000000000000/share")
    assert missing.status_code == 404 and "not published" in missing.json()["error"]["message"]
    too_long = merchant.post(
        f"/v1/stores/{STORE}/themes/{build_id}/share", params={"expires_in_s": 400 * 24 * 3600}
    )
    assert too_long.status_code == 422 and "SHARE_LINK_MAX_TTL_S" in too_long.json()["error"]["message"]
    # Another store's token cannot share this store's build
    api.token_for("stanley1913")
    assert api.client("stanley1913").post(f"/v1/stores/{STORE}/themes/{build_id}/share").status_code == 403


# --- in a real browser --------------------------------------------------------------------------


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class _Cdn:
    """A stand-in for cdn.shopify.com over HTTPS on 127.0.0.1: any path is a solid-colour tile."""

    def __init__(self, folder: Path) -> None:
        self.paths: list[str] = []
        cdn = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cdn.paths.append(self.path)
                pick = int(hashlib.sha256(self.path.encode()).hexdigest(), 16) % len(TILE_COLOURS)
                body = _png(64, 64, TILE_COLOURS[pick])
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        cert, key = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cdn(tmp_path: Path) -> Iterator[_Cdn]:
    server = _Cdn(tmp_path)
    yield server
    server.close()


@pytest.mark.chromium
def test_shared_preview_in_chromium_shows_product_photos_and_spanish(
    api: ApiHarness, built: dict[str, Any], cdn: _Cdn, tmp_path: Path
) -> None:
    from tests.integration.test_theme_build import _png_rows

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium package: apt-get install -y chromium (.ci/run installs it)")
    # Given a share link, and cdn.shopify.com answered by a local stand-in (no internet here)
    link = _client(api, "publish").post(f"/v1/stores/{STORE}/themes/{built['build_id']}/share").json()["url"]
    shot = tmp_path / "preview.png"
    # When headless Chromium, with no token, opens the link and takes a screenshot
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--host-resolver-rules=MAP cdn.shopify.com 127.0.0.1:{cdn.port}, EXCLUDE 127.0.0.1",
            "--ignore-certificate-errors",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            f"--screenshot={shot}",
            "--window-size=1280,1800",
            link,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    png = shot.read_bytes() if shot.exists() else b""
    assert proc.returncode == 0 and png, proc.stderr[-2000:]
    # Then no console message (a CSP violation or a failed image would log one)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    # And the browser fetched the products' photos from "cdn.shopify.com", through the page's policy
    page = _Page()
    page.feed(built["preview"].decode())
    asked = {
        urlsplit(src).path + ("?" + urlsplit(src).query if urlsplit(src).query else "") for src in page.imgs
    }
    assert asked and asked <= set(cdn.paths), (sorted(asked - set(cdn.paths))[:3], cdn.paths[:3])
    # And the photos are on screen: the stand-in's tile colours cover a real share of the screenshot
    width, rows, bpp = _png_rows(png, max_rows=1800)
    pixels = [row[i : i + 3] for row in rows[::3] for i in range(0, width * bpp, bpp * 3)]
    tiles = sum(
        1
        for px in pixels
        if any(all(abs(a - b) <= 6 for a, b in zip(px, c, strict=True)) for c in TILE_COLOURS)
    )
    assert tiles / len(pixels) > 0.05, tiles / len(pixels)
    # And the page the browser showed is the Spanish one
    assert 'lang="es"' in built["preview"].decode() and "Carrito (0)" in built["preview"].decode()
    keep = os.environ.get("THEME_PREVIEW_SCREENSHOT")  # e.g. docs/theme-preview.png, when regenerating docs
    if keep:
        shutil.copyfile(shot, keep)
