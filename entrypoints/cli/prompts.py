"""`prompts`: versions, labels and rollouts, rendering, diffs and evals of the prompt files."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from adapters.errors import InvalidInput
from entrypoints.cli.output import console, print_json, print_result, print_table
from entrypoints.cli.prompt_eval import eval_prompt
from entrypoints.cli.prompt_refs import labels_store, registry, resolve, split_ref

if TYPE_CHECKING:
    from adapters.prompt_labels import LabelState
    from agents.prompts import PromptRegistry

prompts_app = typer.Typer(
    help="Prompt versions, labels (production, staging, canaries), renders, diffs and evals.",
    no_args_is_help=True,
)

AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
REF = typer.Argument(..., help="AGENT or AGENT@VERSION; VERSION may be a label (production, staging, ...).")


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _pct(value: float) -> str:
    return f"{value:.4g}%"


def label_names(reg: PromptRegistry, agent: str, labels: dict[str, LabelState]) -> dict[str, list[str]]:
    """version -> its labels; a file's own label counts only where Redis has none of that name."""
    out: dict[str, list[str]] = {v: [] for v in reg.versions(agent)}
    for name, state in sorted(labels.items()):
        if state.version in out:
            weight = f" {_pct(state.weight)}" if name != "production" and state.weight else ""
            out[state.version].append(f"{name}{weight}")
    file_labels = {lab for v in out for lab in reg.get(agent, v).meta.labels}
    for name in sorted(file_labels - set(labels)):
        out[reg.default_version(agent, name)].append(f"{name} (file)")
    return out


# --- list, show, diff --------------------------------------------------------------------


@prompts_app.command("list")
def list_prompts(as_json: bool = AS_JSON) -> None:
    """Every agent's versions, the labels pointing at them and the share of traffic each gets."""
    from agents.evals.cases import cases_path
    from agents.rollout import traffic_shares

    reg = registry()
    store = labels_store()
    rows: list[dict[str, Any]] = []
    for agent in reg.agents():
        labels = store.get_all(agent)
        names = label_names(reg, agent, labels)
        shares = traffic_shares(labels, reg.default_version(agent), reg.versions(agent))
        cases = cases_path(reg.root, agent)
        count = sum(1 for line in cases.read_text().splitlines() if line.strip()) if cases.exists() else 0
        for version in reg.versions(agent):
            meta = reg.get(agent, version).meta
            rows.append(
                {
                    "agent": agent,
                    "version": version,
                    "labels": ", ".join(names[version]),
                    "traffic": _pct(shares.get(version, 0.0)),
                    "model": meta.model,
                    "cases": count,
                    "description": _short(meta.description, 48),
                }
            )
    if as_json:
        print_json({"prompts": rows})
        return
    print_table(
        rows,
        ["agent", "version", "labels", "traffic", "model", "cases", "description"],
        title="prompts",
        right=["traffic", "cases"],
    )


@prompts_app.command("show")
def show(ref: str = REF, as_json: bool = AS_JSON) -> None:
    """Print one prompt file (default: the version production serves)."""
    reg = registry()
    agent, name = split_ref(ref)
    prompt = reg.get(agent, resolve(reg, agent, name))
    if as_json:
        print_json({"ref": prompt.ref, "path": str(prompt.path), "source": prompt.source})
        return
    console.print(f"[bold]{prompt.ref}[/]  {prompt.path}", highlight=False)
    console.print(Text(prompt.source), soft_wrap=True)


@prompts_app.command("diff")
def diff(
    agent: str = typer.Argument(..., help="Agent (prompt folder)."),
    v1: str = typer.Argument(..., help="Old version or label."),
    v2: str = typer.Argument(..., help="New version or label."),
    as_json: bool = AS_JSON,
) -> None:
    """A unified diff of two versions' files."""
    reg = registry()
    old, new = reg.get(agent, resolve(reg, agent, v1)), reg.get(agent, resolve(reg, agent, v2))
    lines = list(
        difflib.unified_diff(
            old.source.splitlines(),
            new.source.splitlines(),
            fromfile=f"{old.ref} ({old.path.name})",
            tofile=f"{new.ref} ({new.path.name})",
            lineterm="",
        )
    )
    if as_json:
        print_json({"old": old.ref, "new": new.ref, "identical": not lines, "diff": lines})
        return
    if not lines:
        console.print(f"{old.ref} and {new.ref} are identical", highlight=False)
        return
    styles = {"+++": "bold", "---": "bold", "@@": "cyan", "+": "green", "-": "red"}
    for line in lines:
        style = next((s for p, s in styles.items() if line.startswith(p)), "")
        console.print(Text(line, style=style), soft_wrap=True)


# --- render ------------------------------------------------------------------------------


def render_messages(
    agent_name: str, version: str, data: Any, options: dict[str, Any], reg: PromptRegistry
) -> dict[str, Any]:
    """What `Agent.run` would send for this input: messages, prompt tokens, worst-case cost."""
    from adapters.settings import get_settings
    from agents.gateway import GatewayClient, GatewayConfig
    from agents.inputs import agent_class, variables_for
    from agents.pricing import price_for
    from agents.runtime import AgentRuntime
    from agents.tokens import count_messages
    from agents.usage import nano_to_usd, usd_to_nano

    settings = get_settings()
    prompt = reg.get(agent_name, version)
    # Rendering calls nothing: the client only carries the price overrides.
    gateway = GatewayClient(
        GatewayConfig(base_url="http://render.invalid", price_overrides=settings.price_overrides)
    )
    agent = agent_class(agent_name)(AgentRuntime(gateway=gateway, prompts=reg))
    messages = prompt.render(variables_for(agent, data, prompt, options))
    tokens = count_messages(messages, prompt.meta.model)
    price = price_for(prompt.meta.model, settings.price_overrides)
    worst = price.worst_case(tokens, prompt.meta.max_tokens)
    return {
        "prompt": prompt.ref,
        "model": prompt.meta.model,
        "temperature": prompt.meta.temperature,
        "max_tokens": prompt.meta.max_tokens,
        "response_format": prompt.meta.output,
        "messages": messages,
        "prompt_tokens": tokens,
        "worst_case_usd": format(nano_to_usd(usd_to_nano(worst)), "f"),
    }


def _pick_product(data: Any, product_id: str | None) -> Any:
    from agents.shopify import load_products

    if product_id is None:
        return data
    chosen = [p for p in load_products(data) if str(p.get("id")) == product_id]
    if not chosen:
        raise InvalidInput(f"no product with id {product_id} in the input file")
    return chosen[0]


@prompts_app.command("render")
def render(
    ref: str = REF,
    input: Path = typer.Option(
        ...,
        "--input",
        "-i",
        help="JSON file: a Shopify product for product_copy, the prompt's variables for other agents.",
    ),
    product: str | None = typer.Option(None, "--product", help="Pick one product of an export by id."),
    options: str | None = typer.Option(
        None, "--options", help='JSON object, e.g. \'{"brand_voice": "...", "locale": "de"}\'.'
    ),
    as_json: bool = AS_JSON,
) -> None:
    """The exact messages the agent would send for this input, their token count and worst-case cost."""
    from entrypoints.cli.jobs import parse_json_option, read_json

    reg = registry()
    agent, name = split_ref(ref)
    version = resolve(reg, agent, name)
    out = render_messages(
        agent, version, _pick_product(read_json(input), product), parse_json_option(options, "--options"), reg
    )
    if as_json:
        print_json(out)
        return
    console.print(
        f"[bold]{out['prompt']}[/]  {out['model']}  temperature {out['temperature']}  "
        f"max_tokens {out['max_tokens']}  response_format {out['response_format']} (JSON schema)",
        highlight=False,
    )
    for message in out["messages"]:
        console.rule(f"[bold]{message['role']}[/]", align="left")
        console.print(Text(message["content"]), soft_wrap=True)
    console.rule()
    console.print(
        f"prompt tokens: {out['prompt_tokens']:,}   worst-case cost per call: ${out['worst_case_usd']} "
        f"({out['prompt_tokens']:,} prompt + {out['max_tokens']:,} completion tokens; "
        "a repair is one more call)",
        highlight=False,
    )


# --- labels ------------------------------------------------------------------------------


@prompts_app.command("promote")
def promote(
    agent: str = typer.Argument(..., help="Agent (prompt folder)."),
    version: str = typer.Argument(..., help="Version to point the label at, e.g. v2."),
    label: str = typer.Option(..., "--label", "-l", help="production, staging, or a canary label."),
    weight: float | None = typer.Option(
        None,
        "--weight",
        "-w",
        help="Percent of traffic for a canary label (0-100; production takes the rest).",
    ),
    note: str = typer.Option("", "--note", help="Why, for the history."),
    as_json: bool = AS_JSON,
) -> None:
    """Point a label at a version; running workers follow within seconds."""
    reg = registry()
    reg.get(agent, version)  # only versions this checkout has
    state = labels_store().promote(
        agent, label, version, weight, fallback=reg.default_version(agent), note=note
    )
    was = f" (was {state.previous.version})" if state.previous else ""
    share = f" with {_pct(state.weight)} of traffic" if label != "production" else ""
    print_result(as_json, label_move(agent, label, state), f"{agent}: {label} -> {state.version}{share}{was}")


def label_move(agent: str, label: str, state: LabelState | None) -> dict[str, Any]:
    """A label move as JSON: where the label points now (None: removed) and where it pointed."""
    return {
        "agent": agent,
        "label": label,
        "version": state.version if state else None,
        "weight": state.weight if state and label != "production" else None,
        "previous": state.previous.version if state and state.previous else None,
    }


@prompts_app.command("rollback")
def rollback(
    agent: str = typer.Argument(..., help="Agent (prompt folder)."),
    label: str = typer.Option(..., "--label", "-l", help="The label to point back where it was."),
    note: str = typer.Option("", "--note", help="Why, for the history."),
    as_json: bool = AS_JSON,
) -> None:
    """Point a label back at the version it pointed at before (a canary made from nothing ends)."""
    registry().versions(agent)
    state = labels_store().rollback(agent, label, note=note)
    if state is None:
        text = f"{agent}: {label} removed (it had no previous version)"
    else:
        was = f" (was {state.previous.version})" if state.previous else ""
        text = f"{agent}: {label} -> {state.version}{was}"
    print_result(as_json, label_move(agent, label, state), text)


@prompts_app.command("history")
def history(
    agent: str = typer.Argument(..., help="Agent (prompt folder)."),
    limit: int = typer.Option(50, min=1, max=500, help="Most recent moves to show."),
    as_json: bool = AS_JSON,
) -> None:
    """Label moves of one agent, newest first."""
    registry().versions(agent)
    entries = labels_store().history(agent, limit)
    if as_json:
        print_json({"agent": agent, "history": entries})
        return
    rows = [
        {
            **e,
            "at": _when(e.get("at")),
            "weight": _pct(e["weight"])
            if e.get("weight") is not None and e.get("label") != "production"
            else "",
            "version": e.get("version") or "(removed)",
        }
        for e in entries
    ]
    print_table(
        rows,
        ["at", "action", "label", "from_version", "version", "weight", "note"],
        title=f"{agent}: label history",
    )


prompts_app.command("eval")(eval_prompt)


# --- costs --by prompt ----------------------------------------------------------------------


def print_version_quality(rows: list[dict[str, Any]]) -> None:
    """Under `costs` grouped by prompt: each version's invalid answers, repairs and latency."""
    versions: dict[str, dict[str, float]] = {}
    for row in rows:
        v = versions.setdefault(row["prompt"], {"calls": 0, "invalid": 0, "repaired": 0, "latency": 0.0})
        v["calls"] += row["calls"]
        v["invalid"] += row["invalid"]
        v["repaired"] += row["repaired"]
        v["latency"] += row["latency_ms_avg"] * row["calls"]
    table = [
        {
            "prompt": name,
            "calls": int(v["calls"]),
            "invalid": int(v["invalid"]),
            "invalid_rate": f"{v['invalid'] / v['calls']:.1%}" if v["calls"] else "",
            "repaired": int(v["repaired"]),
            "latency_ms_avg": f"{v['latency'] / v['calls']:.1f}" if v["calls"] else "",
        }
        for name, v in sorted(versions.items())
    ]
    columns = ["calls", "invalid", "invalid_rate", "repaired", "latency_ms_avg"]
    print_table(table, ["prompt", *columns], title="prompt versions: failures and latency", right=columns)
