"""The Dramatiq whose internals pipelines/dramatiq_gaps.py fills in is the one installed and pinned."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from pipelines.dramatiq_gaps import DRAMATIQ_VERSION

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pinned(name: str) -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for spec in dependencies:
        found = re.fullmatch(rf"{name}(\[[^\]]*\])?==(\S+)", spec.replace(" ", ""))
        if found:
            return found.group(2)
    raise AssertionError(f"{name} is not pinned exactly (==) in pyproject.toml")


def test_the_installed_dramatiq_is_the_pinned_one_the_gaps_were_written_for() -> None:
    # If this fails, Dramatiq was upgraded (or the pin moved): re-check every gap named in
    # pipelines/dramatiq_gaps.py against the new version's code, then move DRAMATIQ_VERSION.
    pinned = _pinned("dramatiq")
    assert version("dramatiq") == pinned, f"installed dramatiq {version('dramatiq')}, pinned {pinned}"
    assert pinned == DRAMATIQ_VERSION, (
        f"dramatiq is pinned at {pinned}, but pipelines/dramatiq_gaps.py was checked against "
        f"{DRAMATIQ_VERSION}: re-check its gaps, then update DRAMATIQ_VERSION"
    )
