"""Counts the fault suite measures, and `docs/reliability.md` rendered from them.

Each scenario adds its runs to a `Tally` (before it asserts, so a broken promise is
reported too); at the end of the session `write_report()` merges this session's rows
into `docs/reliability.json` (scenarios not run this time keep their last rows) and
renders `docs/reliability.md` from it. Nothing in the document is typed by hand.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
DATA = ROOT / "docs" / "reliability.json"
_lock = threading.Lock()


@dataclass
class Tally:
    """One fault scenario: how often it ran, what was sent, and how each accepted job ended."""

    name: str
    fault: str
    runs: int = 0
    sent: int = 0
    completed: int = 0
    failed: int = 0  # failed with a reason
    lost: int = 0  # accepted, then neither published nor failed with a reason
    duplicated: int = 0  # published more than once or half, or counted twice in the ledger
    notes: dict[str, Any] = field(default_factory=dict)
    # Settings the scenario's worker ran with that differ from the production defaults.
    settings: dict[str, str] = field(default_factory=dict)

    def setting(self, name: str, value: str) -> None:
        """Name a setting this scenario changes (beyond its world's)."""
        self.settings[name] = str(value)

    def add(
        self, *, sent: int, completed: int, failed: int, lost: int, duplicated: int, runs: int = 1
    ) -> None:
        self.runs += runs
        self.sent += sent
        self.completed += completed
        self.failed += failed
        self.lost += lost
        self.duplicated += duplicated

    def add_outcome(self, outcome: Any, *, sent: int, duplicated: int, runs: int = 1) -> None:
        """`add` from an `Outcome` (tests/faults/env.py): its completed, failed and lost jobs."""
        self.add(
            sent=sent,
            completed=len(outcome.completed),
            failed=len(outcome.failed),
            lost=len(outcome.lost),
            duplicated=duplicated,
            runs=runs,
        )

    def note(self, key: str, value: Any) -> None:
        """Add a number to a note (or set a text note)."""
        if isinstance(value, int | float) and isinstance(self.notes.get(key, 0), int | float):
            self.notes[key] = self.notes.get(key, 0) + value
        else:
            self.notes[key] = value


@dataclass
class HostileTally:
    """One family of hostile input: cases tried, crashes, unsafe outputs."""

    name: str
    target: str
    cases: int = 0
    crashes: int = 0  # anything but a clear validation error or a correct result
    unsafe: int = (
        0  # script, handler, javascript:/data: URL, expression() or @import published; key outside prefix
    )
    notes: dict[str, Any] = field(default_factory=dict)


_scenarios: dict[str, Tally] = {}
_hostile: dict[str, HostileTally] = {}
_world_settings: dict[str, str] = {}


def world_settings(settings: dict[str, str]) -> None:
    """The settings the current test's world changes (its fixture calls this before the test)."""
    with _lock:
        _world_settings.clear()
        _world_settings.update(settings)


def scenario(name: str, fault: str) -> Tally:
    """The session's tally for `name` (created on first use), naming its world's changed settings."""
    with _lock:
        tally = _scenarios.setdefault(name, Tally(name, fault))
        tally.settings.update(_world_settings)
        return tally


def hostile(name: str, target: str) -> HostileTally:
    with _lock:
        return _hostile.setdefault(name, HostileTally(name, target))


def write_report() -> Path | None:
    """Merge this session's counts into docs/reliability.json and render docs/reliability.md."""
    if not _scenarios and not _hostile:
        return None
    data: dict[str, Any] = {"scenarios": {}, "hostile": {}}
    if DATA.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(DATA.read_text())
    day = datetime.now(UTC).date().isoformat()
    for tally in _scenarios.values():
        data.setdefault("scenarios", {})[tally.name] = {**asdict(tally), "recorded": day}
    for h in _hostile.values():
        data.setdefault("hostile", {})[h.name] = {**asdict(h), "recorded": day}
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    DOC.write_text(render(data))
    return DOC


def _notes(notes: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in sorted(notes.items()))


def _settings(row: dict[str, Any]) -> str:
    if "settings" not in row:
        return "not recorded"
    changed = row["settings"]
    return ", ".join(f"`{k}={v}`" for k, v in sorted(changed.items())) if changed else "none (defaults)"


def render(data: dict[str, Any]) -> str:
    scenarios = sorted(data.get("scenarios", {}).values(), key=lambda r: r["name"])
    hostile_rows = sorted(data.get("hostile", {}).values(), key=lambda r: r["name"])
    lines = [
        "# Reliability: faults and hostile input",
        "",
        "<!-- Generated by the fault suite (tests/faults/, part of `make test`) from docs/reliability.json."
        " Do not edit by hand. -->",
        "",
        "Every number below was measured by `tests/faults/` against real processes: the worker as",
        "the Procfile runs it (`dramatiq entrypoints.worker:setup`), a valkey-server with AOF, the dev",
        "gateway and moto's S3 server, each in its own process, broken on purpose. A job is *lost* when",
        "it was accepted (its status written and its message enqueued) and then neither published nor failed",
        "with a reason; *duplicated* when it left more than one output, a half-written one, or a model",
        "call counted twice in the ledger.",
        "",
        "The workers run the production defaults (`adapters/settings.py`; docs/configuration.md).",
        "*Settings changed* names every setting a scenario's worker ran with that differs from them;",
        "in particular every scenario recovers a killed worker's jobs with the default heartbeat",
        "timeout and maintenance interval (docs/decisions/0019-broker-maintenance-on-a-timer.md).",
        "",
        "## Fault matrix",
        "",
        "| scenario | fault | settings changed | runs | jobs sent | completed | failed with reason | lost "
        "| duplicated | measured |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in scenarios:
        lines.append(
            f"| {r['name']} | {r['fault']} | {_settings(r)} | {r['runs']} | {r['sent']} | {r['completed']} "
            f"| {r['failed']} | {r['lost']} | {r['duplicated']} | {_notes(r.get('notes', {}))} |"
        )
    total = {
        k: sum(r[k] for r in scenarios) for k in ("runs", "sent", "completed", "failed", "lost", "duplicated")
    }
    lines.append(
        f"| **total** | | | {total['runs']} | {total['sent']} | {total['completed']} | {total['failed']} "
        f"| **{total['lost']}** | **{total['duplicated']}** | |"
    )
    lines += [
        "",
        "## Hostile input",
        "",
        "Property-based tests (hypothesis) and a corpus of XSS (OWASP filter-evasion vectors among",
        "them) and prompt-injection payloads (`tests/faults/corpus/`). A *crash* is anything but a",
        "clear validation error or a correct result; an *unsafe output* is a published file holding a",
        "script, an event handler, a `javascript:`/`data:` URL, a CSS `expression()` or `@import`, or",
        "a key outside the store's prefix.",
        "",
        "| input | target | cases tried | crashes | unsafe outputs | measured |",
        "|---|---|---:|---:|---:|---|",
    ]
    for h in hostile_rows:
        lines.append(
            f"| {h['name']} | {h['target']} | {h['cases']} | {h['crashes']} | {h['unsafe']} "
            f"| {_notes(h.get('notes', {}))} |"
        )
    cases = sum(h["cases"] for h in hostile_rows)
    crashes = sum(h["crashes"] for h in hostile_rows)
    unsafe = sum(h["unsafe"] for h in hostile_rows)
    lines.append(f"| **total** | | {cases} | **{crashes}** | **{unsafe}** | |")
    days = sorted({r["recorded"] for r in [*scenarios, *hostile_rows]})
    lines += ["", f"Recorded: {', '.join(days)}.", ""]
    return "\n".join(lines)
