"""The embedded defaults' Valkey (no REDIS_URL): one server per data folder, shared by every
process of a session (the CLI, `uvicorn`, the workers), stopped with the last of them.

Each process that uses the server holds a lease: a file named by its pid in
`embedded-redis.leases/`. At exit a process drops its lease and, when no live process holds one,
shuts the server down (`SHUTDOWN`, which writes the AOF). The server runs in a session of its own,
so a Ctrl-C in the terminal reaches the processes that use it and not the server itself: the last
of them stops it. A process that ends without its exit hooks (SIGKILL; `uvicorn`, which re-raises
the SIGTERM it caught once it has shut down) leaves a lease whose pid is gone: a watchdog process
started with the server (`python -m adapters.embedded_redis`) stops the server within
`WATCH_INTERVAL_S` once no live process holds a lease, and then exits.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import multiprocessing
import multiprocessing.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis

URL_FILE = "embedded-redis.url"
LOCK_FILE = "embedded-redis.lock"
LEASES = "embedded-redis.leases"
START_TIMEOUT_S = 10.0
WATCH_INTERVAL_S = 0.5

_lock = threading.Lock()
# (pid that holds the lease, data folder, url): a forked child holds none until it asks.
_held: tuple[int, Path, str] | None = None
_started: subprocess.Popen[bytes] | None = None  # the server, if this process started it


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """The data folder's lock: processes started together agree on one server."""
    with open(data_dir / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def embedded_url(data_dir: Path, binary: str) -> str:
    """The URL of the data folder's server (started with `binary` if none answers); leases it."""
    global _held
    with _lock:
        if _held is not None and _held[0] == os.getpid():
            return _held[2]
        data_dir.mkdir(parents=True, exist_ok=True)
        with _locked(data_dir):
            url = running_url(data_dir) or _start(data_dir, binary)
            leases = data_dir / LEASES
            leases.mkdir(exist_ok=True)
            (leases / str(os.getpid())).touch()
        _held = (os.getpid(), data_dir, url)
        atexit.register(release)
        if multiprocessing.parent_process() is not None:
            # A multiprocessing child (the `dramatiq` command's worker processes) ends with
            # os._exit, after its finalizers and never its atexit hooks.
            multiprocessing.util.Finalize(None, release, exitpriority=1)
        return url


def running_url(data_dir: Path) -> str | None:
    """The URL of the data folder's server if one answers."""
    url_file = data_dir / URL_FILE
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2).ping()
    except redis.RedisError:
        return None
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, binary: str) -> str:
    global _started
    folder = data_dir / "valkey"
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    # Production's persistence (AOF), loopback only; the server's log in its folder.
    with open(folder / "valkey.log", "ab") as log:
        _started = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder.resolve()),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            client.ping()
            break
        except redis.BusyLoadingError:
            time.sleep(0.05)  # replaying its AOF
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Valkey did not start; see {folder / 'valkey.log'}") from None
            time.sleep(0.02)
        finally:
            client.close()
    (data_dir / URL_FILE).write_text(url)
    # The watchdog: it outlives any one user of the server, and stops it after the last.
    subprocess.Popen(
        [sys.executable, "-m", "adapters.embedded_redis", str(data_dir.resolve()), url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holders(data_dir: Path) -> list[int]:
    """Pids of live processes that hold a lease (stale leases are removed)."""
    live = []
    folder = data_dir / LEASES
    for lease in folder.glob("*") if folder.exists() else ():
        pid = int(lease.name) if lease.name.isdigit() else 0
        if pid and _alive(pid):
            live.append(pid)
        else:
            lease.unlink(missing_ok=True)
    return live


def release() -> None:
    """Drop this process's lease; the last holder shuts the server down."""
    global _held
    with _lock:
        if _held is None or _held[0] != os.getpid():
            return  # inherited over fork: the parent's lease, not ours
        _pid, data_dir, url = _held
        _held = None
        with _locked(data_dir):
            (data_dir / LEASES / str(os.getpid())).unlink(missing_ok=True)
            if not holders(data_dir):
                _shutdown(data_dir, url)
        if _started is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                _started.wait(timeout=10)


def _shutdown(data_dir: Path, url: str) -> None:
    """Stop the server (under the folder's lock)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=10)
    # The reply never comes: the server closes the connection as it exits.
    with contextlib.suppress(redis.RedisError):
        client.shutdown()
    client.close()
    (data_dir / URL_FILE).unlink(missing_ok=True)


def watch(data_dir: Path, url: str) -> None:
    """The watchdog's loop: stop the server once no live process holds a lease; end with it."""
    while True:
        time.sleep(WATCH_INTERVAL_S)
        with _locked(data_dir):
            url_file = data_dir / URL_FILE
            if not url_file.exists() or url_file.read_text().strip() != url:
                return  # stopped by its last user, or replaced
            if not holders(data_dir):
                _shutdown(data_dir, url)
                return


if __name__ == "__main__":
    watch(Path(sys.argv[1]), sys.argv[2])
