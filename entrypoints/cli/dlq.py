"""`dlq list | show | replay | purge`: the jobs Dramatiq gave up on, why, and putting them back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from adapters.pipeline_names import canonical
from entrypoints.cli.output import console, fail, print_json, print_table

dlq_app = typer.Typer(
    help="Dead letters: jobs that failed for good (what, why, when, how many tries); replay or purge.",
    no_args_is_help=True,
)
QUEUE = typer.Option(None, "--queue", "-q", help="Only this queue (batch, interactive, ...).")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _dead_letters() -> Any:
    from adapters.logs import configure_logging, register_secrets
    from adapters.settings import get_settings
    from entrypoints.compose import redis_client
    from pipelines.dead_letters import DeadLetters

    settings = get_settings()
    # Replays and purges are logged (JSON, on stderr) like the workers' events; stdout stays the answer.
    configure_logging(settings.log_level, settings.log_format)
    register_secrets(settings.secret_values())
    return DeadLetters(redis_client(settings))


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dlq_app.command("list")
def list_(queue: str | None = QUEUE, as_json: bool = AS_JSON) -> None:
    """What failed, why, when, and after how many tries (oldest first)."""
    entries = _dead_letters().list(queue)
    if as_json:
        print_json({"dead_letters": [{**e.summary(), "dead_at": _when(e.dead_at)} for e in entries]})
        return
    rows = [
        {
            "id": e.id,
            "queue": e.queue,
            "pipeline": canonical(e.actor) if e.actor else "?",
            "store": e.store or "",
            "tries": e.attempts,
            "dead_at": _when(e.dead_at),
            "reason": _short(e.reason),
        }
        for e in entries
    ]
    print_table(
        rows,
        ["id", "queue", "pipeline", "store", "tries", "dead_at", "reason"],
        title=f"{len(rows)} dead letter(s)",
    )


@dlq_app.command("show")
def show(
    ident: str = typer.Argument(..., help="A job id (or, for a message that does not decode, its Redis id)."),
    queue: str | None = QUEUE,
    as_json: bool = AS_JSON,
) -> None:
    """One dead letter in full: the reason, the tries, and the message's arguments."""
    entry = _dead_letters().get(ident, queue)
    detail = {**entry.detail(), "dead_at": _when(entry.dead_at)}
    if as_json:
        print_json(detail)
        return
    import json

    rows = [
        {
            "field": k,
            "value": v if isinstance(v, str | int | float | bool) else json.dumps(v, ensure_ascii=False),
        }
        for k, v in detail.items()
    ]
    print_table(rows, ["field", "value"], title=f"dead letter {entry.id}")


@dlq_app.command("replay")
def replay(
    ident: str | None = typer.Argument(None, help="A job id from `dlq list`."),
    all_: bool = typer.Option(False, "--all", help="Replay every dead letter (of --queue, if given)."),
    queue: str | None = QUEUE,
    as_json: bool = AS_JSON,
) -> None:
    """Put dead letters back on their queues as fresh deliveries of the same jobs."""
    if (ident is None) == (not all_):
        fail("give one job id, or --all")
    dead = _dead_letters()
    entries = dead.list(queue) if all_ else [dead.get(ident or "", queue)]
    replayed, skipped = [], []
    for entry in entries:
        if not entry.replayable:
            skipped.append(entry)
            continue
        replayed.append(dead.replay(entry))
    if as_json:
        skipped_rows = [{"id": e.id, "reason": "does not decode; `dlq purge` drops it"} for e in skipped]
        print_json({"replayed": replayed, "skipped": skipped_rows})
    for job_id in [] if as_json else replayed:
        console.print(f"replayed {job_id} (follow it with `wandstore-agents status {job_id}`)")
    for entry in [] if as_json else skipped:
        console.print(f"skipped {entry.id}: it does not decode, so it cannot run; `dlq purge` drops it")
    if not replayed and not all_:
        raise typer.Exit(1)


@dlq_app.command("purge")
def purge(
    queue: str | None = QUEUE,
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask for confirmation."),
    as_json: bool = AS_JSON,
) -> None:
    """Drop dead letters for good (their job statuses stay, as failed)."""
    dead = _dead_letters()
    count = dead.count(queue)
    if count and not yes:
        typer.confirm(f"drop {count} dead letter(s) of {queue or 'every queue'}?", abort=True, err=True)
    purged = dead.purge(queue)
    if as_json:
        print_json({"purged": purged, "queue": queue})
    else:
        console.print(f"purged {purged} dead letter(s)")
