"""The CLI as people and scripts run it, in a process of its own: `--json` that parses, logs on
stderr (warnings only on a terminal unless `--verbose`), no traceback, and no embedded Valkey left
running by a command that started one."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sample_products

CLI = str(Path(sys.executable).parent / "wandstore-agents")
NOISE = ("Traceback", "Unclosed", "Exception ignored")


def run(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a subprocess (the environment is the test session's: its Redis, its gateway)."""
    result = subprocess.run(
        [CLI, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=120
    )
    for noise in NOISE:
        assert noise not in result.stderr, f"{args}: {result.stderr}"
    return result


def run_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run(*args, "--json", env=env)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return json.loads(result.stdout)


def on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout piped); returns exit code and stderr's text."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.communicate(timeout=60)
    text = b"".join(chunks).decode(errors="replace")
    for noise in NOISE:
        assert noise not in text, f"{args}: {text}"
    return proc.returncode, text


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "products.json"
    path.write_text(json.dumps({"products": sample_products("stanley1913")[:3]}))
    return path


def test_logs_show_warnings_only_on_a_terminal_unless_verbose(
    sample_stores: Any, catalog_file: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "LOG_LEVEL": "INFO", "LOCAL_STORE_DIR": str(tmp_path / "objects")}
    # Given a command that logs an info event (a catalog snapshot written)
    # When its stderr is a pipe, the event is a JSON line there (LOG_LEVEL as set), stdout is the answer
    piped = run("catalog", "upload", "stanley1913", str(catalog_file), "--json", env=env)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["counts"]["total"] == 3
    lines = [json.loads(line) for line in piped.stderr.splitlines() if line.startswith("{")]
    assert any(line["event"] == "catalog_snapshot_written" for line in lines)
    # When its stderr is a terminal, the info event is not shown
    code, quiet = on_a_terminal("catalog", "upload", "stanley1913", str(catalog_file), env=env)
    assert code == 0 and "catalog_snapshot_written" not in quiet, quiet
    # And with --verbose (before or after the command) it is
    for args in (("--verbose", "catalog", "upload"), ("catalog", "upload", "--verbose")):
        code, loud = on_a_terminal(*args, "stanley1913", str(catalog_file), env=env)
        assert code == 0 and "catalog_snapshot_written" in loud, loud


def test_every_command_that_reports_has_a_json_option() -> None:
    import typer.main

    from entrypoints.cli.main import app

    def leaves(command: Any, path: tuple[str, ...]) -> Any:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from leaves(sub, (*path, name))
        if not getattr(command, "commands", None):
            yield path, command

    missing = [
        " ".join(path)
        for path, command in leaves(typer.main.get_command(app), ())
        if "--json" not in {opt for param in command.params for opt in getattr(param, "opts", ())}
    ]
    assert missing == ["gateway"]  # a server, not a report


def in_process(*args: str) -> Any:
    """The CLI in this process (cheap): JSON on stdout that parses, exit 0."""
    from typer.testing import CliRunner

    from entrypoints.cli.main import app

    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, f"{args}: {result.output}"
    return json.loads(result.stdout)


def test_every_reporting_command_takes_json(sample_stores: Any, redis_client: Any) -> None:
    run_json = in_process
    # Budgets
    assert run_json("budget", "set", "stanley1913", "12.5") == {
        "store": "stanley1913",
        "daily_budget_usd": "12.5",
        "source": "override",
    }
    cleared = run_json("budget", "clear", "stanley1913")
    assert cleared["removed"] is True and cleared["source"] == "DAILY_BUDGET_USD"
    # Prompt labels: a canary, then its rollback
    moved = run_json("prompts", "promote", "product_copy", "v1", "--label", "canary", "--weight", "10")
    assert moved["label"] == "canary" and moved["version"] == "v1" and moved["weight"] is not None
    back = run_json("prompts", "rollback", "product_copy", "--label", "canary")
    assert back["label"] == "canary" and back["version"] is None
    shown = run_json("prompts", "show", "product_copy@v1")
    assert shown["ref"] == "product_copy@v1" and shown["source"]
    # Tokens: made, scoped, revoked
    made = run_json("tokens", "create", "stanley1913")
    token_id = made["token_id"]
    assert run_json("tokens", "scopes", token_id, "--scope", "read")["scopes"] == ["read"]
    assert run_json("tokens", "revoke", token_id) == {"revoked": True, "store": "stanley1913"}
    # Dead letters: none to replay, none to purge
    assert run_json("dlq", "replay", "--all") == {"replayed": [], "skipped": []}
    assert run_json("dlq", "purge", "--yes") == {"purged": 0, "queue": None}
    # Stores
    assert run_json("stores", "remove", "kiids-kingdom", "--yes") == {
        "store": "kiids-kingdom",
        "removed": True,
    }


def test_run_product_copy_prints_a_totals_row_and_no_traceback(
    sample_stores: Any, catalog_file: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "LOCAL_STORE_DIR": str(tmp_path / "objects")}
    result = run("run", "product-copy", "--store", "stanley1913", "--input", str(catalog_file), env=env)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 4, result.stdout  # three products, then the totals
    cells = [cell.strip() for cell in rows[-1].strip("│").split("│")]
    assert cells[0] == "total"
    product_tokens = [int([c.strip() for c in r.strip("│").split("│")][4]) for r in rows[:-1]]
    assert int(cells[4]) == sum(product_tokens) > 0


def valkeys_under(folder: Path) -> list[int]:
    """Pids of valkey-server processes whose working folder is under `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if "valkey-server" not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(folder)):
            found.append(int(proc.name))
    return found


def gone(folder: Path, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while valkeys_under(folder):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def lease_holder(data: Path) -> subprocess.Popen[str]:
    """Another process using the embedded server until its stdin closes."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from adapters.embedded_redis import embedded_url; "
            "from adapters.redis_conn import valkey_binary; "
            "print(embedded_url(Path(sys.argv[1]), valkey_binary()), flush=True); sys.stdin.readline()",
            str(data),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_the_embedded_valkey_stops_with_the_last_process_using_it(tmp_path: Path) -> None:
    data = tmp_path / "var"
    # The embedded defaults: no REDIS_URL, the data folder of LOCAL_STORE_DIR
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["LOCAL_STORE_DIR"] = str(data / "objects")
    # When a command starts the embedded Valkey and ends
    assert run_json("stores", "list", env=env) == {"stores": []}
    # Then no valkey-server is left running
    assert gone(data), valkeys_under(data)
    # Given another process using the embedded server
    holder = lease_holder(data)
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("redis://")
        # When a command uses it and ends, the server keeps running for the other process
        assert run_json("stores", "list", env=env) == {"stores": []}
        assert valkeys_under(data)
    finally:
        # And when that process ends too, the server stops
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert gone(data), valkeys_under(data)
    # Given a process that started the server and is then killed without its exit hooks (as
    # `uvicorn` ends after a SIGTERM: it re-raises the signal once shut down)
    killed = lease_holder(data)
    assert killed.stdout is not None and killed.stdout.readline().startswith("redis://")
    assert valkeys_under(data)
    killed.kill()
    killed.wait(timeout=30)
    # Then the server's watchdog stops it all the same
    assert gone(data), valkeys_under(data)
