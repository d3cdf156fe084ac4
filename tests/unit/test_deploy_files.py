"""The deploy files: the CI workflow (actionlint), the Dockerfile (hadolint), the entrypoint that runs
the Procfile's processes, and the staging/production settings (known, non-secret settings only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV_FILES = ("env.staging", "env.production")


def tool(name: str) -> str:
    """A linter from the dev extra, next to this Python (or on PATH)."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} not installed: `make install` (the dev extra pins it)"
    return found


def test_workflow_passes_actionlint() -> None:
    workflow = ROOT / ".github" / "workflows" / "ci.yml"
    result = subprocess.run(
        [tool("actionlint"), "-no-color", str(workflow)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = workflow.read_text()
    for step in ("make lint", "make test", "docker/build-push-action"):
        assert step in text


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_healthcheck_and_constraints() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert lines[0].startswith("#")
    froms = [line for line in lines if line.startswith("FROM ")]
    assert all(line.split()[1] == "python:3.11-slim" for line in froms)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "healthcheck.py" in (ROOT / "Dockerfile").read_text()
    assert "/healthz" in (ROOT / "deploy" / "healthcheck.py").read_text()
    assert any("-c constraints.txt" in line for line in lines)
    assert 'CMD ["web"]' in lines


def test_entrypoint_runs_each_procfile_process_by_name(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: echo web on ${PORT:-8000}\nworker: echo worker $0\n")
    env = {**os.environ, "PROCFILE": str(procfile), "PORT": "8123"}
    script = str(ROOT / "deploy" / "run-process")

    def run(*args: str) -> str:
        out = subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=10, check=True)
        return out.stdout.strip()

    assert run() == "web on 8123"  # no argument: the default command, web
    assert run("worker") == "worker sh"
    assert run("echo", "any", "command") == "any command"
    # The real Procfile's processes are the ones the docs name.
    names = [line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line]
    ops = (ROOT / "docs" / "operations.md").read_text()
    for name in names:
        assert f"wandstore-agents {name}" in ops, f"docs/operations.md: how to run {name} from the image"


def env_file(name: str) -> dict[str, str]:
    pairs = {}
    for line in (ROOT / "deploy" / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{name}: not KEY=value: {line!r}"
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.mark.parametrize("name", ENV_FILES)
def test_env_files_hold_only_known_non_secret_settings(name: str) -> None:
    fields = Settings.model_fields
    values = env_file(name)
    assert values
    for key in values:
        assert key == key.upper(), f"{name}: {key} (settings are upper case)"
        field = fields.get(key.lower())
        assert field is not None, f"{name}: {key} is not a setting of adapters/settings.py"
        assert SecretStr not in getattr(field.annotation, "__args__", (field.annotation,)), (
            f"{name}: {key} is a secret; the platform injects it"
        )
        assert key not in {"REDIS_URL"}, f"{name}: {key} may hold a password"
    # Every value is valid for its setting.
    load_settings(**{k.lower(): v for k, v in values.items()})


def test_staging_and_production_are_kept_apart() -> None:
    staging, production = env_file("env.staging"), env_file("env.production")
    for key in ("AI_GATEWAY_ID", "R2_THEMES_BUCKET", "R2_BACKUPS_BUCKET"):
        assert staging[key] != production[key], key
    assert float(staging["DAILY_BUDGET_USD"]) < float(production["DAILY_BUDGET_USD"])


def test_the_wheel_ships_every_file_the_packages_read() -> None:
    """The image installs a wheel: every non-Python file inside a package is package data."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = {
        found
        for package, patterns in config.get("package-data", {}).items()
        for pattern in patterns
        for found in (ROOT / Path(*package.split("."))).glob(pattern)
    }
    for top in config["packages"]["find"]["include"]:
        for path in (ROOT / top.rstrip("*")).rglob("*"):
            if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT)
                assert path in shipped, f"{rel} is not in [tool.setuptools.package-data]: the image lacks it"
