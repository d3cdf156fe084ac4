"""A local folder as an object store: the zero-setup default, safe across processes.

Layout under `root`:

- `<key>`: the body, so the folder can be browsed as-is;
- content type, metadata and ETag: in the body file's extended attribute `user.wandstore`
  (written on the temp file, so they arrive with the body in one rename), or, where the file
  system keeps no user attributes, in a sidecar `.wandstore/meta/<key>.json`; neither when
  there is no metadata and the content type is the one the key's extension implies (a read
  then works both out from the key and the body, as for a file placed by hand);
- `.wandstore/locks/NN.lock`: striped `flock` locks serializing writers of a key
  across threads and processes (readers take them shared, so a body and its sidecar
  are always seen together);
- `.<name>.<random>.wstmp`: temp files, renamed into place with `os.replace`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import mimetypes
import os
import re
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.errors import AlreadyExists, InvalidInput, NotFound, StoreError
from adapters.store.base import (
    StoredObject,
    check_body,
    check_conditions,
    check_key,
    check_prefix,
    md5_etag,
    normalize_metadata,
    same_etag,
)

RESERVED_DIR = ".wandstore"
_TEMP_RE = re.compile(r"^\..*\.[0-9a-f]{12}\.wstmp$")
_LOCK_STRIPES = 64
# Folders remembered as made (one per product under `stores/{store}/products/`): forgotten all
# at once past this many, so a worker writing a large fleet's copy keeps a bounded set.
_FOLDERS_KEPT = 4096
_XATTR = "user.wandstore"
# Where an attribute cannot be kept: no user attributes on this file system, or too big for it.
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.E2BIG, errno.ENOSPC, errno.ERANGE, errno.EPERM}


def _guessed_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _discard(tmp: Path) -> None:
    """Remove a temp file that was not renamed into place (a rename that succeeded took its name)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


class LocalStore:
    """Objects as files under `root`, with atomic writes and cross-process conditional puts."""

    name = "local"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self._meta_root = self.root / RESERVED_DIR / "meta"
        self._lock_root = self.root / RESERVED_DIR / "locks"
        # Folders this process has made or seen: a mkdir per write was ~0.3 ms of a copy job.
        # At most `_FOLDERS_KEPT` (a product's folder is seldom written twice in a row).
        self._folders: set[Path] = set()
        # Attributes on the body file, until the file system refuses one (then sidecars). A new
        # file costs 0.2-0.6 ms of CPU on this project's hosts' ext4: a sidecar was a second one.
        self._xattrs = hasattr(os, "setxattr")

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # --- the ObjectStore protocol ----------------------------------------------

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write `body` under `key` atomically; return its ETag (see `ObjectStore.put`)."""
        path = self._path(key)
        body = check_body(body, content_type)
        meta = normalize_metadata(metadata)
        check_conditions(if_none_match, if_match)
        etag = md5_etag(body)
        # A JSON document under a `.json` key, with no metadata, needs no description at all.
        implied = not meta and content_type == _guessed_type(key)
        described = (
            b""
            if implied
            else json.dumps(
                {"content_type": content_type, "metadata": meta, "etag": etag}, separators=(",", ":")
            ).encode()
        )
        with self._os_errors("put", key), self._locked(key, exclusive=True):
            self._make_parent(path, key)
            conditional = if_none_match or if_match is not None
            if conditional and path.is_dir():  # a plain put learns it from the rename
                raise self._folder_conflict(key)
            if if_match is not None:
                current, _ = self._read(path, key, describe=False)
                if not same_etag(md5_etag(current), if_match):
                    raise AlreadyExists(f"put {key!r}: If-Match {if_match} failed, the object has changed")
            tmp = self._temp_in(path.parent, path.name, body, key)
            in_xattr = bool(described) and self._set_xattr(tmp, described)
            try:
                if if_none_match:
                    self._link_new(tmp, path, key)
                    _discard(tmp)  # linked: the temp name goes (gone already if it was renamed)
                else:
                    os.replace(tmp, path)
            except IsADirectoryError:
                _discard(tmp)
                raise self._folder_conflict(key) from None
            except BaseException:
                _discard(tmp)
                raise
            if described and not in_xattr:
                self._write_sidecar(key, described)
            else:
                self._drop_sidecar(key)  # an earlier write's sidecar would outlive this body's
        return etag

    def get(self, key: str) -> StoredObject:
        """Read `key` with its content type and metadata; raises `NotFound`."""
        path = self._path(key)
        with self._os_errors("get", key), self._locked(key, exclusive=False):
            body, sidecar = self._read(path, key, describe=True)
            if sidecar is None:
                sidecar = self._read_sidecar(key)
        etag = md5_etag(body)
        if sidecar is None or sidecar.get("etag") != etag:
            # Written without one (see the module's docstring), placed by hand, or a writer died
            # between body and sidecar: the body wins, with the type its key implies.
            return StoredObject(key=key, body=body, content_type=_guessed_type(key), metadata={}, etag=etag)
        return StoredObject(
            key=key,
            body=body,
            content_type=str(sidecar.get("content_type") or "application/octet-stream"),
            metadata={str(k): str(v) for k, v in (sidecar.get("metadata") or {}).items()},
            etag=etag,
        )

    def exists(self, key: str) -> bool:
        """True when `key` holds an object."""
        path = self._path(key)
        with self._os_errors("exists", key):
            return path.is_file()

    def list(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix`, in lexical (code point = UTF-8 byte) order."""
        check_prefix(prefix)
        base = self.root / prefix[: prefix.rfind("/") + 1] if "/" in prefix else self.root
        keys: list[str] = []
        with self._os_errors("list", prefix):
            for dirpath, dirnames, filenames in os.walk(base):
                rel_dir = Path(dirpath).relative_to(self.root).as_posix()
                rel_dir = "" if rel_dir == "." else rel_dir + "/"
                if rel_dir == "":
                    dirnames[:] = [d for d in dirnames if d != RESERVED_DIR]
                for filename in filenames:
                    if _TEMP_RE.match(filename):
                        continue
                    key = rel_dir + filename
                    if key.startswith(prefix):
                        keys.append(key)
        keys.sort()
        return iter(keys)

    def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""
        path = self._path(key)
        with self._os_errors("delete", key), self._locked(key, exclusive=True):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                os.unlink(path)
            self._drop_sidecar(key)

    def ping(self) -> None:
        """Raise `StoreError` unless the root folder exists (or can be made) and is writable."""
        try:
            self._lock_root.mkdir(parents=True, exist_ok=True)
            self._meta_root.mkdir(parents=True, exist_ok=True)
            tmp = self._write_temp(self.root, "ping", b"")
            os.unlink(tmp)
        except OSError as exc:
            raise StoreError(
                f"local store {str(self.root)!r} is not writable ({exc.strerror or exc}): "
                "check LOCAL_STORE_DIR and its permissions"
            ) from None

    # --- helpers -----------------------------------------------------------------

    def _path(self, key: str) -> Path:
        check_key(key)
        segments = key.split("/")
        if segments[0] == RESERVED_DIR:
            raise InvalidInput(
                f"object key {key!r} is invalid: {RESERVED_DIR!r} is reserved by the local store"
            )
        if _TEMP_RE.match(segments[-1]):
            raise InvalidInput(f"object key {key!r} is invalid: the name looks like a local-store temp file")
        return self.root.joinpath(*segments)

    def _sidecar_path(self, key: str) -> Path:
        *folders, name = key.split("/")
        return self._meta_root.joinpath(*folders, name + ".json")

    @contextlib.contextmanager
    def _locked(self, key: str, *, exclusive: bool) -> Iterator[None]:
        stripe = zlib.crc32(key.encode()) % _LOCK_STRIPES
        lock_path = self._lock_root / f"{stripe:02x}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            self._lock_root.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextlib.contextmanager
    def _os_errors(self, op: str, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InvalidInput(f"object key {key!r} is invalid: a path segment is too long") from None
            raise StoreError(
                f"local store {op} {key!r} failed ({exc.strerror or exc}): "
                f"check LOCAL_STORE_DIR ({str(self.root)!r}), its permissions and free space"
            ) from None

    def _folder_conflict(self, key: str) -> StoreError:
        return StoreError(
            f"local store cannot hold {key!r}: it collides with another key used as a folder "
            "(e.g. 'a/b' and 'a/b/c'); R2 allows this, a file system does not"
        )

    def _make_parent(self, path: Path, key: str) -> None:
        if path.parent not in self._folders:
            self._make_folder(path.parent, key)

    def _make_folder(self, folder: Path, key: str) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise self._folder_conflict(key) from None
        if len(self._folders) >= _FOLDERS_KEPT:
            self._folders.clear()
        self._folders.add(folder)

    def _read(self, path: Path, key: str, *, describe: bool) -> tuple[bytes, dict[str, Any] | None]:
        """The body, and (`describe`) the description in its attribute (None: it has none)."""
        try:
            with open(path, "rb") as fh:
                return fh.read(), (self._get_xattr(fh.fileno()) if describe else None)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no object {key!r} in {str(self.root)!r}") from None

    def _set_xattr(self, tmp: Path, described: bytes) -> bool:
        """Describe the temp file in its attribute; False where the file system keeps none."""
        if not self._xattrs:
            return False
        try:
            os.setxattr(tmp, _XATTR, described)
        except OSError as exc:
            if exc.errno not in _NO_XATTR:
                raise
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                self._xattrs = False  # this file system: sidecars from now on
            return False
        return True

    def _get_xattr(self, fd: int) -> dict[str, Any] | None:
        if not self._xattrs:  # none written here (no attributes on this platform or file system)
            return None
        try:
            data = json.loads(os.getxattr(fd, _XATTR))
        except OSError as exc:
            if exc.errno in (errno.ENODATA, *_NO_XATTR):
                return None
            raise
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _read_sidecar(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._sidecar_path(key).read_bytes())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _drop_sidecar(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(self._sidecar_path(key))

    def _write_sidecar(self, key: str, data: bytes) -> None:
        path = self._sidecar_path(key)
        self._make_parent(path, key)
        tmp = self._temp_in(path.parent, path.name, data, key)
        try:
            os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise

    def _temp_in(self, folder: Path, name: str, data: bytes, key: str) -> Path:
        """A temp file in `folder`, remaking the folder if it went away since we cached it."""
        try:
            return self._write_temp(folder, name, data)
        except FileNotFoundError:
            self._folders.clear()  # someone removed folders under us: trust nothing cached
            self._make_folder(folder, key)
            return self._write_temp(folder, name, data)

    @staticmethod
    def _write_temp(folder: Path, name: str, data: bytes) -> Path:
        tmp = folder / f".{name[:100]}.{secrets.token_hex(6)}.wstmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    @staticmethod
    def _link_new(tmp: Path, path: Path, key: str) -> None:
        """Create `path` from `tmp` only if it does not exist yet (atomic with `link`)."""
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise AlreadyExists(f"put {key!r}: If-None-Match failed, the object already exists") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # No hard links here (some FUSE/SMB mounts): the exclusive key lock we hold
            # makes check-then-rename safe among processes using this store.
            if path.exists():
                raise AlreadyExists(f"put {key!r}: If-None-Match failed, the object already exists") from None
            os.replace(tmp, path)
