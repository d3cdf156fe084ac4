"""Theme builds end to end: real Redis, a real worker, the dev gateway over HTTP, both stores, Chromium."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import InvalidInput, TransientStoreError
from tests.conftest import sample_products
from tests.fixtures.stores import add_store
from tests.helpers import arun, send_plain, wait_job

STORE = "stanley1913"
BRIEF = {
    "description": "Rugged, dependable drinkware for the outdoors and the everyday; warm and plain-spoken.",
    "audience": "campers and commuters",
    "palette_hint": "forest green and warm off-white",
}
AGENTS = ("brand_strategist", "theme_designer", "layout_planner", "section_copywriter", "theme_critic")
# What must never appear in a published file, whatever the model answered.
ACTIVE = re.compile(r"(?i)<\s*script|javascript\s*:|expression\s*\(|@import|url\s*\(|<\s*iframe")


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def save_catalog(svc: Any, store: str = STORE, count: int = 16) -> None:
    from pipelines.theme_build import save_catalog as save

    # Products shoppers may see: a theme never features a sold-out one (nor a draft).
    live = [p for p in sample_products(STORE) if any(v.get("available") for v in p["variants"])]
    save(svc.store, store, {"products": live[:count]})


@pytest.fixture(params=["local", "r2"])
def store_kind(request: pytest.FixtureRequest, services: Any) -> Any:
    """The local folder and S3 over HTTP (moto), each with the store's catalog snapshot."""
    if request.param == "r2":
        services.store = request.getfixturevalue("r2_store")
    save_catalog(services)
    return services


@pytest.fixture
def catalog(services: Any) -> Any:
    save_catalog(services)
    return services


def build(svc: Any, build_id: str | None = None, brief: dict[str, Any] | None = None, **kw: Any) -> Any:
    from pipelines.theme_build import build_theme

    return arun(build_theme(svc, kw.pop("store", STORE), brief or BRIEF, build_id=build_id, **kw))


def approve(svc: Any, result: Any, store: str = STORE) -> None:
    """A person approves the build's draft (a store's themes wait for review by default)."""
    from pipelines.drafts_review import approve as approve_draft

    assert not result.live and result.pointer is None
    approve_draft(svc.redis, svc.store, store, result.draft_id, by="test")


def manifest(svc: Any, build_id: str, store: str = STORE) -> dict[str, Any]:
    doc: dict[str, Any] = svc.store.get(f"themes/{store}/builds/{build_id}/theme.json").json()
    return doc


def pointer(svc: Any, store: str = STORE) -> dict[str, Any]:
    doc: dict[str, Any] = svc.store.get(f"themes/{store}/current.json").json()
    return doc


class Watched:
    """A real store, watched: records every put, and what existed when the pointer was written."""

    def __init__(self, inner: Any, fail_on: str | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.puts: list[str] = []
        self.at_pointer: list[str] | None = None
        self.fail_on = fail_on

    def put(self, key: str, body: bytes, **kw: Any) -> str:
        if self.fail_on and key.endswith(self.fail_on):
            self.fail_on = None
            raise TransientStoreError(f"injected: {key} could not be written")
        if key.endswith("/current.json"):
            build_id = json.loads(body)["build_id"]
            self.at_pointer = sorted(self.inner.list(f"themes/{STORE}/builds/{build_id}/"))
        self.puts.append(key)
        return str(self.inner.put(key, body, **kw))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- the build ------------------------------------------------------------------


def test_worker_build_publishes_every_file_then_the_pointer_once_approved(
    store_kind: Any, worker: Any, gateway: Any
) -> None:
    from entrypoints import compose
    from pipelines.drafts_review import approve as approve_draft

    broker = compose.process_broker()

    # Given a brief sent by a client that knows only the actor name and queue
    job = send_plain(broker, "build_theme", "batch", STORE, BRIEF)
    # When the worker has built it
    info = wait_job(store_kind.status, job, timeout_s=60)
    # Then the build id is the job id, and status says done
    assert info["status"] == "done", info
    assert info["progress"] == "done" and info["build_id"] == job
    doc = manifest(store_kind, job)
    prefix = f"themes/{STORE}/builds/{job}/"
    assert info["output_keys"] == [prefix + "theme.json", prefix + "preview.html"]
    # And it waits for review (the default for themes): no pointer yet, a draft named in the status
    assert info["live"] == "false" and info["draft_id"]
    assert not store_kind.store.exists(f"themes/{STORE}/current.json")
    # And every file theme.json lists is there, with its hash and content type
    expected = {"tokens.css", "theme.css", "preview.html"} | {s["fragment"] for s in doc["sections"]}
    assert set(doc["files"]) == expected
    assert sorted(store_kind.store.list(prefix)) == sorted(prefix + p for p in [*expected, "theme.json"])
    for path, entry in doc["files"].items():
        obj = store_kind.store.get(prefix + path)
        assert obj.content_type.split(";")[0] == entry["content_type"].split(";")[0]
        assert hashlib.sha256(obj.body).hexdigest() == entry["sha256"], path
    # And the preview shows the store's real products, by title and price
    preview = html.unescape(store_kind.store.get(prefix + "preview.html").body.decode())
    assert doc["products"] and all(p["title"] in preview and p["price"] in preview for p in doc["products"])
    # And the page starts with the hero and ends with the footer, from the catalogue only
    types = [s["type"] for s in doc["sections"]]
    assert types[0] == "hero" and types[-1] == "footer" and len(set(types)) == len(types)
    # And once approved, the pointer names this build; cost is counted by agent
    approve_draft(store_kind.redis, store_kind.store, STORE, info["draft_id"], by="test")
    assert pointer(store_kind)["build_id"] == job
    meta = doc["meta"]
    assert set(meta["cost_by_agent"]) == set(AGENTS)
    assert all(float(v) > 0 for v in meta["cost_by_agent"].values())
    assert sum(meta["calls_by_agent"].values()) == meta["calls"] == gateway.stats()["model_calls"]
    assert meta["job_id"] == job and meta["pipeline"] == "theme_build" and meta["generated_at"]


def test_progress_walks_through_every_step(catalog: Any, gateway: Any) -> None:
    steps: list[str] = []
    result = build(catalog, progress=steps.append)
    sections = len(manifest(catalog, result.build_id)["sections"])
    assert steps[:3] == ["brand", "design", "layout"]
    copies = [s for s in steps if s.startswith("copy ")]
    assert (
        copies[0] == f"copy 0/{len(copies) - 1}" and copies[-1] == f"copy {len(copies) - 1}/{len(copies) - 1}"
    )
    assert len(copies) - 1 >= sections  # a section whose copy can't meet its needs is left out
    assert "review" in steps and steps[-1] == "publish"


def test_status_cli_shows_the_build(store_kind: Any, worker: Any, gateway: Any) -> None:
    from typer.testing import CliRunner

    from entrypoints import compose
    from entrypoints.cli.main import app

    broker = compose.process_broker()

    job = send_plain(broker, "build_theme", "batch", STORE, BRIEF)
    wait_job(store_kind.status, job, timeout_s=60)
    out = CliRunner().invoke(app, ["status", job, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["progress"] == "done"


def test_pointer_is_written_only_after_every_file_exists(catalog: Any, gateway: Any) -> None:
    # Given a store that records what existed when the pointer was written
    watched = Watched(catalog.store)
    catalog.store = watched
    # When a theme is built and approved
    result = build(catalog)
    approve(catalog, result)
    # Then every build file was there before the pointer, theme.json was the last of them
    prefix = f"themes/{STORE}/builds/{result.build_id}/"
    files = [prefix + p for p in manifest(catalog, result.build_id)["files"]] + [prefix + "theme.json"]
    assert watched.at_pointer == sorted(files)
    theme_puts = [k for k in watched.puts if k.startswith("themes/")]
    assert theme_puts[-2:] == [prefix + "theme.json", f"themes/{STORE}/current.json"]


def test_failed_publish_keeps_the_old_theme_and_a_rerun_finishes(catalog: Any, gateway: Any) -> None:
    # Given a published theme
    first = build(catalog)
    approve(catalog, first)
    # When the next build's publish fails half-way (preview.html can't be written)
    watched = Watched(catalog.store, fail_on="preview.html")
    catalog.store = watched
    with pytest.raises(TransientStoreError):
        build(catalog, build_id="second-build-0001")
    # Then readers still see the old theme, whole
    assert pointer(catalog)["build_id"] == first.build_id
    assert not catalog.store.exists(f"themes/{STORE}/builds/second-build-0001/theme.json")
    # And running the build again (same id) finishes it from its saved steps
    calls = gateway.stats()["model_calls"]
    again = build(catalog, build_id="second-build-0001")
    assert gateway.stats()["model_calls"] == calls  # nothing was asked of a model again
    approve(catalog, again)
    assert pointer(catalog)["build_id"] == again.build_id == "second-build-0001"
    assert pointer(catalog)["previous_build_id"] == first.build_id


# --- checks, hostile output ------------------------------------------------------


def _wcag(fg: str, bg: str) -> float:
    def lum(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_failures_go_back_to_the_designer_with_numbers_then_pass(catalog: Any, gateway: Any) -> None:
    # Given the dev gateway, whose palettes put accent-coloured labels on accent buttons
    result = build(catalog)
    doc = manifest(catalog, result.build_id)
    rounds = doc["checks"]["rounds"]["design"]
    # Then the designer's first palette failed, and the failures went back with their numbers
    assert rounds[0]["problems"], rounds
    assert any(
        re.search(r"contrast \d+\.\d\d:1, needs at least (4\.5|3):1", p) for p in rounds[0]["problems"]
    )
    assert len(rounds) == 2
    design_rounds = sum(len(r) for step, r in doc["checks"]["rounds"].items() if step.startswith("design"))
    assert doc["meta"]["calls_by_agent"]["theme_designer"] == design_rounds  # (the critic may ask again)
    # And the published palette meets WCAG 2.1 AA on every pair (measured independently here)
    palette = doc["tokens"]["palette"]
    for row in doc["checks"]["contrast"]:
        assert _wcag(palette[row["fg"]], palette[row["bg"]]) >= row["minimum"], row
    assert ("text", "background", 4.5) in {
        (r["fg"], r["bg"], r["minimum"]) for r in doc["checks"]["contrast"]
    }
    # And what the fix-up changed is recorded with the numbers
    changed = [a for a in doc["checks"]["adjustments"] if a["field"].startswith("palette.")]
    assert changed and all(
        re.search(r"\d\.\d\d:1 on palette\.\w+ #[0-9a-f]{6}, needs", a["reason"]) for a in changed
    )
    tokens_css = catalog.store.get(f"themes/{STORE}/builds/{result.build_id}/tokens.css").body.decode()
    assert all(f"{a['to']};" in tokens_css for a in changed)


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.bad.append(tag)
        self.bad.extend(f"{tag}[{k}]" for k, _ in attrs if k.startswith("on"))
        self.bad.extend(f"{tag}[{k}={v}]" for k, v in attrs if k in ("href", "src") and "script" in (v or ""))


def test_hostile_model_output_never_reaches_a_published_file(catalog: Any, gateway: Any) -> None:
    from adapters.errors import InvalidOutput

    # Given a gateway that answers XSS and injection payloads in every text field (and the CSS ones)
    gateway.config(hostile=True)
    try:
        result = build(catalog)
    except InvalidOutput as exc:  # refusing is fine too, as long as nothing was published
        assert "after one repair" in str(exc)
        assert list(catalog.store.list("themes/")) == []
        return
    # Then every published file is inert
    keys = list(catalog.store.list(f"themes/{STORE}/"))
    assert len(keys) >= 6
    for key in keys:
        text = catalog.store.get(key).body.decode()
        assert not ACTIVE.search(text), (key, ACTIVE.search(text))
        if key.endswith(".html"):
            parser = _Attrs()
            parser.feed(text)
            assert parser.bad == [], (key, parser.bad)
    # And the designer's CSS was parsed and dropped, not pasted
    doc = manifest(catalog, result.build_id)
    assert doc["checks"]["css_dropped"]
    assert doc["model_css"] == {"heading_css": "", "button_css": ""}


# --- rollback, resume ------------------------------------------------------------


def test_rollback_restores_the_previous_pointer(services: Any, gateway: Any) -> None:
    from typer.testing import CliRunner

    from adapters.settings import get_settings
    from adapters.store import open_store
    from entrypoints.cli.main import app

    # Given two builds of a store in the store the CLI uses
    store = "rollback-demo"
    add_store(services.redis, store)  # the CLI acts only on stores someone added
    services.store = open_store(get_settings())
    save_catalog(services, store)
    first = build(services, store=store)
    approve(services, first, store)
    second = build(services, store=store, brief={**BRIEF, "tone": "quiet"})
    approve(services, second, store)
    assert pointer(services, store)["build_id"] == second.build_id
    # When the first is activated again
    runner = CliRunner()
    out = runner.invoke(app, ["themes", "activate", store, first.build_id, "--json"])
    # Then the pointer is back on it, remembering what it replaced
    assert out.exit_code == 0, out.output
    assert pointer(services, store)["build_id"] == first.build_id
    assert pointer(services, store)["previous_build_id"] == second.build_id
    listed = json.loads(runner.invoke(app, ["themes", "list", store, "--json"]).stdout)["builds"]
    assert {r["build_id"]: r["current"] for r in listed} == {first.build_id: True, second.build_id: False}
    # And a build that was never published can't be activated
    out = runner.invoke(app, ["themes", "activate", store, "never-published-1"])
    assert out.exit_code != 0 and pointer(services, store)["build_id"] == first.build_id


def test_worker_dying_mid_build_resumes_without_redoing_finished_steps(
    catalog: Any, worker: Any, gateway: Any
) -> None:
    from entrypoints import compose

    broker = compose.process_broker()
    from pipelines.theme_steps import StepStore

    # Given the gateway fails the layout planner's first call (after brand and design are done)
    gateway.faults([{"kind": "500", "match": "Section catalogue"}])
    job = send_plain(broker, "build_theme", "batch", STORE, BRIEF)
    # When the worker runs it, fails, and Dramatiq delivers it again
    info = wait_job(catalog.status, job, timeout_s=60)
    # Then the second delivery finished it
    assert info["status"] == "done", info
    assert info["attempts"] == 2 and gateway.stats()["faults_served"] == 1
    # And no finished step was asked of a model twice: every call made is one the theme counts
    meta = manifest(catalog, job)["meta"]
    assert gateway.stats()["model_calls"] == meta["calls"]
    assert meta["calls_by_agent"]["brand_strategist"] == 1
    assert {"inputs", "brand", "design", "layout", "review:1", "render", "published"} <= set(
        StepStore(catalog.redis, job).names()
    )


# --- input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "brief", "match"),
    [
        ("Bad_Store", BRIEF, "store slug"),
        ("../etc", BRIEF, "store slug"),
        (STORE, {"audience": "x"}, "description: Field required"),
        (STORE, {"description": "ok brief", "colour": "red"}, "colour: Extra inputs"),
        (STORE, "just a string", "must be a JSON object"),
        ("no-catalog-here", BRIEF, "no catalog snapshot"),
    ],
)
def test_bad_input_is_refused_before_anything_is_enqueued(
    catalog: Any, store: str, brief: Any, match: str
) -> None:
    from entrypoints import compose

    broker = compose.process_broker()
    from pipelines.submit import submit_theme_build

    with pytest.raises(InvalidInput, match=match):
        submit_theme_build(broker, catalog.status, store, brief, objects=catalog.store)
    assert broker.client.llen("dramatiq:batch") == 0
    assert list(catalog.store.list("themes/")) == []


def test_missing_catalog_fails_at_once_without_retry(services: Any, worker: Any) -> None:
    from entrypoints import compose

    broker = compose.process_broker()

    job = send_plain(broker, "build_theme", "batch", "empty-store", BRIEF)
    info = wait_job(services.status, job)
    assert info["status"] == "failed" and info["attempts"] == 1
    assert info["progress"].startswith("failed: ") and "no catalog snapshot" in info["error"]


# --- the preview in a real browser -------------------------------------------------


def _png_rows(data: bytes, max_rows: int) -> tuple[int, list[bytes], int]:
    """A tiny PNG reader (8-bit RGB/RGBA): width, the first `max_rows` unfiltered rows, bytes/pixel."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, bpp = 8, b"", 0, 3
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, _, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(min(max_rows, len(raw) // (stride + 1))):
        kind_byte, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind_byte == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind_byte in (1, 3, 4):
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                up = prev[x]
                if kind_byte == 1:
                    line[x] = (line[x] + left) & 0xFF
                elif kind_byte == 3:
                    line[x] = (line[x] + (left + up) // 2) & 0xFF
                else:
                    corner = prev[x - bpp] if x >= bpp else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                    line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = bytes(line)
    return width, rows, bpp


@pytest.mark.chromium
def test_preview_opens_in_headless_chromium_without_console_errors(catalog: Any, gateway: Any) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium package: apt-get install -y chromium (.ci/run installs it)")
    # Given a published preview.html
    result = build(catalog)
    page = Path(catalog.store.root) / result.preview_key
    # When headless Chromium opens it and takes a screenshot
    with tempfile.TemporaryDirectory() as profile:
        shot = Path(profile) / "preview.png"
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
                f"--user-data-dir={profile}/data",
                "--enable-logging=stderr",
                "--v=0",
                f"--screenshot={shot}",
                "--window-size=1280,1000",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        png = shot.read_bytes() if shot.exists() else b""
    # Then the page logged nothing to the console (no script errors, no CSP violations)
    assert proc.returncode == 0 and png, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    # And the screenshot is not blank: many colours, and plenty of pixels off the background
    width, rows, bpp = _png_rows(png, max_rows=700)
    pixels = [row[i : i + 3] for row in rows[::4] for i in range(0, width * bpp, bpp * 4)]
    counts: dict[bytes, int] = {}
    for px in pixels:
        counts[px] = counts.get(px, 0) + 1
    background = max(counts.values())
    assert len(counts) >= 16, len(counts)
    assert (len(pixels) - background) / len(pixels) > 0.05
