"""`wandstore-agents`: the command line for ops, merchants and developers."""

from __future__ import annotations

import sys

import typer

from adapters.errors import ConfigError, WandstoreError
from entrypoints.cli import backup, costs, demo, gateway, jobs
from entrypoints.cli.catalog import catalog_app
from entrypoints.cli.dlq import dlq_app
from entrypoints.cli.drafts import drafts_app
from entrypoints.cli.prompts import prompts_app
from entrypoints.cli.stores import stores_app
from entrypoints.cli.themes import themes_app
from entrypoints.cli.tokens import tokens_app

app = typer.Typer(
    name="wandstore-agents",
    help="Agent pipelines for WandStore storefronts: product copy, personalization, themes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo", help="Run the main job end to end on embedded defaults (no services, no keys).")(
    demo.demo
)
app.add_typer(jobs.run_app, name="run")
app.add_typer(jobs.enqueue_app, name="enqueue")
app.add_typer(themes_app, name="themes")
app.add_typer(drafts_app, name="drafts")
app.add_typer(prompts_app, name="prompts")
app.command("status", help="Show a job's status, progress, outputs and cost.")(jobs.status)
app.command("gateway", help="Serve the offline dev gateway (AI Gateway's OpenAI and Anthropic endpoints).")(
    gateway.gateway
)
app.command("costs", help="Tokens, cost and cache hits from the usage ledger.")(costs.costs)
app.add_typer(costs.budget_app, name="budget")

app.add_typer(stores_app, name="stores")
app.add_typer(catalog_app, name="catalog")
app.add_typer(tokens_app, name="tokens")
app.command(
    "backup", help="Export tokens, webhook secrets, budgets, prompt labels and stores to the backups bucket."
)(backup.backup)
app.command("restore", help="Write a backup back into Redis; keys that exist are kept.")(backup.restore)
app.add_typer(dlq_app, name="dlq")


VERBOSE = "--verbose"


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False,
        VERBOSE,
        help="Show info logs on stderr (on a terminal only warnings show). Accepted after the command too.",
    ),
) -> None:
    """Agent pipelines for WandStore storefronts: product copy, personalization, themes."""


def split_verbose(argv: list[str]) -> tuple[bool, list[str]]:
    """`--verbose` anywhere before a `--`, and the arguments without it."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a != VERBOSE]
    return len(head) != end, head + argv[end:]


def start_logging(verbose: bool) -> None:
    """Logs on stderr from the first line: warnings only on a terminal unless `--verbose`."""
    from adapters.logs import configure_logging, set_cli_verbosity
    from adapters.settings import get_settings

    set_cli_verbosity(verbose, terminal=sys.stderr.isatty())
    try:
        settings = get_settings()
    except ConfigError:
        configure_logging()  # the command reports the bad setting when it reads it
        return
    configure_logging(settings.log_level, settings.log_format)


def main() -> None:
    from entrypoints.cli.output import fail

    verbose, args = split_verbose(sys.argv[1:])
    start_logging(verbose)
    try:
        app(args=args, prog_name="wandstore-agents")
    except WandstoreError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except Exception as exc:
        if verbose:
            raise
        fail(f"{type(exc).__name__}: {exc} (a bug: run again with --verbose for the traceback)", code=1)


if __name__ == "__main__":
    main()
