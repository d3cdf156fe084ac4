"""`wandstore-agents backup` and `restore`: the state a Redis restart must not lose, in the backups bucket."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from entrypoints.cli.output import console, print_json, print_table

AS_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")


def backup(as_json: bool = AS_JSON) -> None:
    """Export API tokens, webhook secrets, budgets and prompt labels to the backups bucket."""
    from adapters import backup as backups
    from adapters.settings import get_settings
    from adapters.store import open_backup_store, put_json
    from entrypoints.compose import redis_client

    settings = get_settings()
    data = backups.export(redis_client(settings))
    stamp = datetime.fromtimestamp(data["created_at"], UTC).strftime("%Y%m%dT%H%M%S%fZ")
    key = f"{backups.PREFIX}{stamp}.json"
    store = open_backup_store(settings)
    put_json(store, key, data, if_none_match=True)
    counts = backups.summarize(data)
    if as_json:
        print_json({"key": key, "store": store.name, "keys": counts})
        return
    print_table([{"what": k, "keys": v} for k, v in counts.items()], ["what", "keys"], title=f"backup {key}")
    console.print(f"written to {store.name}: {key}", highlight=False)


def restore(
    name: str = typer.Argument("latest", help="A backup's key or file name (see --list), or 'latest'."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace keys that exist (default: keep them)."
    ),
    list_only: bool = typer.Option(False, "--list", help="List the backups instead of restoring."),
    as_json: bool = AS_JSON,
) -> None:
    """Write a backup back into Redis (after a Redis lost its data); existing keys are kept."""
    from adapters import backup as backups
    from adapters.errors import NotFound
    from adapters.settings import get_settings
    from adapters.store import open_backup_store
    from entrypoints.compose import redis_client

    settings = get_settings()
    store = open_backup_store(settings)
    keys = sorted(store.list(backups.PREFIX))
    if list_only:
        if as_json:
            print_json({"store": store.name, "backups": keys})
        else:
            print_table([{"backup": k} for k in keys], ["backup"], title=f"backups in {store.name}")
        return
    if name == "latest":
        if not keys:
            raise NotFound(f"no backups in {store.name} (make one with `wandstore-agents backup`)")
        key = keys[-1]
    else:
        key = name if name.startswith(backups.PREFIX) else backups.PREFIX + name
    data = backups.parse(store.get(key).body)
    done = backups.restore(redis_client(settings), data, overwrite=overwrite)
    groups = sorted(set(done.written) | set(done.kept))
    rows = [{"what": g, "written": done.written[g], "kept": done.kept[g]} for g in groups]
    if as_json:
        print_json({"backup": key, "restored": rows})
    else:
        print_table(rows, ["what", "written", "kept"], title=f"restored {key}", right=["written", "kept"])
