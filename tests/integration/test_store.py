"""One behaviour suite for both object stores (local folder, R2 on moto's server), then their edges."""

from __future__ import annotations

import errno
import hashlib
import http.server
import json
import multiprocessing
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from adapters.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    RetryableError,
    StoreError,
    TransientStoreError,
)
from adapters.settings import load_settings
from adapters.store import LocalStore, ObjectStore, R2Store, open_store, put_json

pytest_plugins = ["tests.fixtures.s3"]

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIDEXAMPLEKEYID0001"


@pytest.fixture(params=["local", "r2"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each test below runs once against each store kind."""
    result: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return result


def md5_etag(body: bytes) -> str:
    return '"' + hashlib.md5(body).hexdigest() + '"'


# --- round trip ------------------------------------------------------------------


def test_put_then_get_round_trips_body_content_type_and_metadata(store: ObjectStore) -> None:
    # Given an empty store
    key = "stores/acme/products/42/copy.json"
    body = '{"title":"Café crème"}'.encode()
    # When an object is written with a content type and metadata
    etag = store.put(
        key, body, content_type="application/json", metadata={"Pipeline": "copy", "input_hash": "ab"}
    )
    # Then it reads back whole, metadata names lower-cased, with the S3-style ETag
    got = store.get(key)
    assert got.key == key
    assert got.body == body
    assert got.content_type == "application/json"
    assert got.metadata == {"pipeline": "copy", "input_hash": "ab"}
    assert etag == got.etag == md5_etag(body)
    assert got.json() == {"title": "Café crème"}
    assert store.exists(key)


def test_overwrite_replaces_body_and_metadata(store: ObjectStore) -> None:
    # Given an object
    store.put("a/x.txt", b"one", content_type="text/plain", metadata={"v": "1"})
    # When it is overwritten unconditionally
    store.put("a/x.txt", b"two", content_type="text/html")
    # Then the new body, content type and (empty) metadata are what a reader sees
    got = store.get("a/x.txt")
    assert (got.body, got.content_type, got.metadata) == (b"two", "text/html", {})


def test_put_json_writes_compact_utf8_json(store: ObjectStore) -> None:
    # When a document is written with put_json
    etag = put_json(store, "stores/acme/catalog.json", {"b": 1, "a": ["é", None]}, metadata={"k": "v"})
    # Then it is compact, key order kept, non-ASCII unescaped, application/json
    got = store.get("stores/acme/catalog.json")
    assert got.body == '{"b":1,"a":["é",null]}'.encode()
    assert got.content_type == "application/json"
    assert got.metadata == {"k": "v"}
    assert got.etag == etag


# --- conditional writes ------------------------------------------------------------


def test_conditional_create_succeeds_once_then_raises_already_exists(store: ObjectStore) -> None:
    # Given a key written with if_none_match
    first = store.put("themes/acme/current.json", b"v1", if_none_match=True)
    assert first == md5_etag(b"v1")
    # When it is created again
    with pytest.raises(AlreadyExists):
        store.put("themes/acme/current.json", b"v2", if_none_match=True)
    # Then the first body stays
    assert store.get("themes/acme/current.json").body == b"v1"


def test_twenty_racing_creates_have_exactly_one_winner(store: ObjectStore) -> None:
    # Given 20 threads released at once to create the same key
    barrier = threading.Barrier(20)
    winners: list[int] = []
    losers: list[BaseException] = []

    def create(i: int) -> None:
        barrier.wait()
        try:
            store.put("race/key.json", str(i).encode(), if_none_match=True)
            winners.append(i)
        except BaseException as exc:
            losers.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    # When they all run
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly one wins, every other gets AlreadyExists, and the winner's body is stored
    assert len(winners) == 1, winners
    assert len(losers) == 19 and all(isinstance(e, AlreadyExists) for e in losers), losers
    assert store.get("race/key.json").body == str(winners[0]).encode()


def test_if_match_is_a_compare_and_swap(store: ObjectStore) -> None:
    # Given an object at version 1
    e1 = store.put("cas.json", b"1")
    # When it is swapped against the current ETag
    e2 = store.put("cas.json", b"2", if_match=e1)
    # Then it succeeds; a swap against the stale ETag fails; the unquoted form works too
    with pytest.raises(AlreadyExists):
        store.put("cas.json", b"3", if_match=e1)
    assert store.get("cas.json").body == b"2"
    store.put("cas.json", b"4", if_match=e2.strip('"'))
    assert store.get("cas.json").body == b"4"


def test_if_match_on_a_missing_key_raises_not_found(store: ObjectStore) -> None:
    # Given no object; When a swap is attempted; Then NotFound, and nothing is created
    with pytest.raises(NotFound):
        store.put("missing.json", b"x", if_match=md5_etag(b"x"))
    assert not store.exists("missing.json")


def test_if_match_and_if_none_match_together_are_refused(store: ObjectStore) -> None:
    with pytest.raises(InvalidInput):
        store.put("k.json", b"x", if_none_match=True, if_match='"abc"')


# --- listing, missing keys, delete ----------------------------------------------------


def test_list_by_prefix_is_lexical_nested_and_shows_only_objects(store: ObjectStore) -> None:
    # Given nested keys (some written conditionally, one overwritten: sidecars and temp files exist)
    keys = [
        "stores/s1/products/2/copy.json",
        "stores/s1/products/10/copy.json",
        "stores/s1/catalog.json",
        "stores/s1-x/catalog.json",
        "stores/s2/shoppers/u1/personalization.json",
        "themes/s1/current.json",
        "zz.json",
    ]
    for i, key in enumerate(keys):
        store.put(key, b"{}", if_none_match=i % 2 == 0, metadata={"n": str(i)})
    store.put("themes/s1/current.json", b"{}")
    # When listed by prefix
    # Then keys come in lexical (byte) order, nested ones included, and nothing else
    assert list(store.list("stores/s1/")) == [
        "stores/s1/catalog.json",
        "stores/s1/products/10/copy.json",
        "stores/s1/products/2/copy.json",
    ]
    assert list(store.list("stores/s1")) == [  # '-' sorts before '/'
        "stores/s1-x/catalog.json",
        "stores/s1/catalog.json",
        "stores/s1/products/10/copy.json",
        "stores/s1/products/2/copy.json",
    ]
    assert list(store.list("")) == sorted(keys)
    assert list(store.list("nothing/here/")) == []


def test_missing_key_is_not_found_and_delete_is_idempotent(store: ObjectStore) -> None:
    # Given a store with one object
    store.put("a/b.json", b"{}")
    # Then a missing key raises NotFound and does not exist
    with pytest.raises(NotFound):
        store.get("a/c.json")
    assert not store.exists("a/c.json")
    # When the object is deleted twice
    store.delete("a/b.json")
    store.delete("a/b.json")
    # Then it is gone
    with pytest.raises(NotFound):
        store.get("a/b.json")
    assert list(store.list("a/")) == []


def test_ping_passes_on_a_working_store(store: ObjectStore) -> None:
    store.ping()


# --- refused input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "a/../../b", "/abs/key", "a\\b", "a\x00b", "a//b", "a/", "", "./a", "a\nb", 5],
)
def test_unsafe_keys_are_refused_before_any_io(store: ObjectStore, key: object) -> None:
    # When an unsafe key is used, Then InvalidInput, whatever the operation
    with pytest.raises(InvalidInput):
        store.put(key, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.get(key)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.delete(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("metadata", [{"note": "café"}, {"bad name": "x"}, {"k": "line\nbreak"}])
def test_metadata_that_s3_cannot_carry_is_refused(store: ObjectStore, metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        store.put("k.json", b"{}", metadata=metadata)
    assert not store.exists("k.json")


def test_local_store_never_writes_outside_its_root(local_store: LocalStore, tmp_path: Path) -> None:
    # Given a local store in tmp_path/objects
    # When traversal and reserved keys are tried
    for key in ["../escaped", "a/../../escaped", ".wandstore/meta/x.json", "a/.x.0123456789ab.wstmp"]:
        with pytest.raises(InvalidInput):
            local_store.put(key, b"x")
    # Then nothing was written at all, inside the root or outside it
    assert list(tmp_path.iterdir()) == []


def test_local_store_reports_a_file_folder_collision(local_store: LocalStore) -> None:
    # Given 'a/b' is an object; When 'a/b/c' is written; Then a StoreError explains why
    local_store.put("a/b", b"x")
    with pytest.raises(StoreError, match="folder"):
        local_store.put("a/b/c", b"y")


def test_local_store_reports_a_folder_file_collision(local_store: LocalStore) -> None:
    # Given 'a/b/c' is an object (so 'a/b' is a folder); When 'a/b' is written, plainly or
    # conditionally; Then a StoreError explains why, no temp file is left, 'a/b/c' is intact
    local_store.put("a/b/c", b"x")
    for conditions in ({}, {"if_none_match": True}):
        with pytest.raises(StoreError, match="folder"):
            local_store.put("a/b", b"y", **conditions)
    assert list(local_store.list("a/")) == ["a/b/c"]
    assert not [p for p in local_store.root.rglob("*.wstmp")]
    assert local_store.get("a/b/c").body == b"x"


def test_local_store_describes_an_object_in_its_file_or_not_at_all(local_store: LocalStore) -> None:
    probe = local_store.root / "probe"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError as exc:  # the fallback test below covers such a file system
        pytest.skip(f"this file system keeps no user attributes ({exc.strerror})")
    # Given a JSON document at a .json key with metadata, then the same body without any
    path = local_store.root / "d" / "x.json"
    local_store.put("d/x.json", b"{}", metadata={"pipeline": "product_copy"})
    assert local_store.get("d/x.json").metadata == {"pipeline": "product_copy"}
    # Then the description travels in the body file's attribute: no second file
    assert json.loads(os.getxattr(path, "user.wandstore"))["metadata"] == {"pipeline": "product_copy"}
    assert not (local_store.root / ".wandstore" / "meta").exists()
    local_store.put("d/x.json", b"{}")
    # And a body the key implies is described by nothing, and read as what the write did
    got = local_store.get("d/x.json")
    assert "user.wandstore" not in os.listxattr(path)
    assert (got.content_type, got.metadata, got.etag) == ("application/json", {}, md5_etag(b"{}"))
    # And a type the key does not imply is kept too
    local_store.put("d/y.json", b"x", content_type="text/plain")
    assert local_store.get("d/y.json").content_type == "text/plain"


def test_local_store_falls_back_to_sidecars_where_files_keep_no_attributes(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file system that refuses user attributes (os.setxattr patched to say so; restored after)
    def refuse(*args: Any) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    sidecar = local_store.root / ".wandstore" / "meta" / "d" / "x.json.json"
    # When an object with metadata is written
    local_store.put("d/x.json", b"{}", metadata={"pipeline": "product_copy"})
    # Then its description is a sidecar, read back with it
    assert sidecar.exists() and local_store.get("d/x.json").metadata == {"pipeline": "product_copy"}
    # And the same body without metadata drops the sidecar
    local_store.put("d/x.json", b"{}")
    assert not sidecar.exists() and local_store.get("d/x.json").metadata == {}
    # And a store written with sidecars (before attributes) is read by a store that has them
    local_store.put("d/z.txt", b"z", content_type="text/csv", metadata={"a": "1"})
    monkeypatch.undo()
    got = LocalStore(local_store.root).get("d/z.txt")
    assert (got.content_type, got.metadata) == ("text/csv", {"a": "1"})


def test_local_store_reads_files_placed_by_hand(local_store: LocalStore) -> None:
    # Given a file dropped into the folder without a sidecar
    (local_store.root / "hand").mkdir(parents=True)
    (local_store.root / "hand" / "made.json").write_bytes(b"[1]")
    # Then it is listed and served with a guessed content type
    assert list(local_store.list("hand/")) == ["hand/made.json"]
    got = local_store.get("hand/made.json")
    assert (got.body, got.content_type, got.metadata) == (b"[1]", "application/json", {})


def test_local_store_remembers_a_bounded_number_of_folders(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store that remembers at most 8 folders (production: 4,096), restored after the test
    import adapters.store.local as local

    monkeypatch.setattr(local, "_FOLDERS_KEPT", 8)
    # When it writes one product's copy in each of 30 new folders
    keys = [f"stores/s/products/{n}/copy.json" for n in range(30)]
    for n, key in enumerate(keys):
        put_json(local_store, key, {"n": n})
        # Then it never remembers more than 8 folders
        assert len(local_store._folders) <= 8
    # And a remembered folder removed under it is made again on the next write
    remembered = next(iter(local_store._folders))
    shutil.rmtree(remembered)
    key = remembered.relative_to(local_store.root).as_posix() + "/copy.json"
    put_json(local_store, key, {"again": True})
    assert local_store.get(key).json() == {"again": True}
    # And every other object reads back as written
    assert [local_store.get(k).json()["n"] for k in keys if k != key] == [
        n for n, k in enumerate(keys) if k != key
    ]


def _cas_increment(root: str, times: int) -> None:
    store = LocalStore(Path(root))
    for _ in range(times):
        while True:
            current = store.get("counter")
            try:
                store.put("counter", str(int(current.body) + 1).encode(), if_match=current.etag)
                break
            except AlreadyExists:
                continue


def _try_create(root: str, i: int) -> bool:
    try:
        LocalStore(Path(root)).put("once", str(i).encode(), if_none_match=True)
        return True
    except AlreadyExists:
        return False


def test_local_conditional_writes_hold_across_processes(local_store: LocalStore) -> None:
    # Given a counter and four worker processes
    local_store.put("counter", b"0")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        # When each increments it 25 times by compare-and-swap, and all race one create
        pool.starmap(_cas_increment, [(str(local_store.root), 25)] * 4)
        created = pool.starmap(_try_create, [(str(local_store.root), i) for i in range(8)])
    # Then no increment was lost, and exactly one create won
    assert local_store.get("counter").body == b"100"
    assert created.count(True) == 1


# --- R2 specifics -------------------------------------------------------------------


def test_r2_client_is_built_with_the_settings_r2_needs(r2_store: R2Store) -> None:
    config: Any = r2_store.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    # botocore reads retries={"max_attempts": 2} as 2 retries: 3 attempts in all
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.s3 == {"addressing_style": "path"}
    assert config.max_pool_connections == 64
    assert config.signature_version == "s3v4"
    assert r2_store.client is r2_store.client  # one client per store


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """An address where nothing listens (the port is held bound, so it stays dead)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _assert_ours_and_clean(exc: BaseException) -> None:
    assert not isinstance(exc, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError)
    assert SECRET not in str(exc) and KEY_ID not in str(exc)


def test_r2_unreachable_endpoint_is_a_transient_store_error(dead_endpoint: str) -> None:
    # Given a store pointed at a port where nothing listens
    store = R2Store(
        "bucket", dead_endpoint, KEY_ID, SECRET, connect_timeout=0.5, read_timeout=0.5, max_attempts=0
    )
    started = time.monotonic()
    # When it is used, Then every operation raises TransientStoreError quickly
    for call in (
        lambda: store.get("k"),
        lambda: store.put("k", b"x"),
        store.ping,
        lambda: list(store.list("")),
    ):
        with pytest.raises(TransientStoreError) as info:
            call()
        _assert_ours_and_clean(info.value)
        assert isinstance(info.value, RetryableError)
    assert time.monotonic() - started < 3


def test_r2_missing_bucket_is_a_store_error_naming_the_setting(moto_server: str) -> None:
    # Given a store on a bucket that does not exist
    store = R2Store("no-such-bucket-here", moto_server, KEY_ID, SECRET)
    # When it is read or pinged, Then StoreError (not NotFound) says what to check
    for call in (lambda: store.get("k"), store.ping):
        with pytest.raises(StoreError) as info:
            call()
        assert not isinstance(info.value, NotFound | TransientStoreError)
        assert "R2_THEMES_BUCKET" in str(info.value)
        _assert_ours_and_clean(info.value)


class _FakeS3(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status and S3 error code in the server's `reply`."""

    protocol_version = "HTTP/1.1"  # so `Expect: 100-continue` is answered at once

    def _answer(self) -> None:
        status, code = self.server.reply  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = f"<Error><Code>{code}</Code><Message>nope {code}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        for name, value in getattr(self.server, "headers", {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_s3() -> Iterator[http.server.ThreadingHTTPServer]:
    """A tiny HTTP server answering like S3 with a chosen error (set `.reply`)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeS3)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "code", "expected", "advice"),
    [
        (403, "AccessDenied", StoreError, "R2_SECRET_ACCESS_KEY"),
        (403, "SignatureDoesNotMatch", StoreError, "R2_ACCESS_KEY_ID"),
        (503, "SlowDown", TransientStoreError, "unavailable"),
        (500, "InternalError", TransientStoreError, "unavailable"),
        (400, "WeirdThing", StoreError, "R2_ENDPOINT_URL"),
    ],
)
def test_r2_error_answers_become_project_errors_without_secrets(
    fake_s3: http.server.ThreadingHTTPServer, status: int, code: str, expected: type[StoreError], advice: str
) -> None:
    # Given an endpoint answering every request with `status`/`code`
    fake_s3.reply = (status, code)  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{fake_s3.server_address[1]}"
    store = R2Store("bucket", url, KEY_ID, SECRET, max_attempts=0)
    # When an object is read and written, Then the project's error, with advice and no secret
    for call in (lambda: store.get("k"), lambda: store.put("k", b"x")):
        with pytest.raises(StoreError) as info:
            call()
        assert type(info.value) is expected
        assert advice in str(info.value)
        _assert_ours_and_clean(info.value)


@pytest.mark.parametrize(("headers", "expected"), [({"Retry-After": "7"}, 7.0), ({}, None)])
def test_r2_throttling_carries_its_retry_after(
    fake_s3: http.server.ThreadingHTTPServer, headers: dict[str, str], expected: float | None
) -> None:
    fake_s3.reply, fake_s3.headers = (503, "SlowDown"), headers  # type: ignore[attr-defined]
    store = R2Store("bucket", f"http://127.0.0.1:{fake_s3.server_address[1]}", KEY_ID, SECRET, max_attempts=0)
    with pytest.raises(TransientStoreError) as info:
        store.get("k")
    assert info.value.retry_after == expected


# --- open_store ----------------------------------------------------------------------


def test_open_store_is_local_without_r2_credentials_and_cached(tmp_path: Path) -> None:
    settings = load_settings(
        local_store_dir=tmp_path / "objs", r2_access_key_id=None, r2_secret_access_key=None
    )
    store = open_store(settings)
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "objs").resolve()
    assert open_store(settings) is store


def test_open_store_is_r2_with_credentials_and_cached(moto_server: str) -> None:
    settings = load_settings(
        r2_access_key_id=KEY_ID,
        r2_secret_access_key=SECRET,
        r2_endpoint_url=moto_server,
        r2_themes_bucket="themes-bucket",
    )
    store = open_store(settings)
    assert isinstance(store, R2Store)
    assert (store.bucket, store.endpoint_url) == ("themes-bucket", moto_server)
    assert open_store(load_settings(**settings.model_dump())) is store
