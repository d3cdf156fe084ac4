"""What a theme build made, assembled: `theme.json`'s content, its `meta`, and summaries for the critic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.theme.inputs import StoreProduct
from agents.usage import Served, nano_to_usd
from domain.i18n import normalize
from domain.sanitize import defang_tree
from domain.themes import checks
from domain.themes.catalogue import FONT_STACKS, SECTIONS
from domain.themes.hue import hint_colours, hue_report
from domain.themes.render import css_variables
from pipelines.publish import input_hash

PIPELINE = "theme_build"
SCHEMA_VERSION = 1
AGENT_ORDER = ("brand_strategist", "theme_designer", "layout_planner", "section_copywriter", "theme_critic")
Record = dict[str, Any]  # one saved step: output, checks, notes, usage, prompt, model


@dataclass(frozen=True)
class BuildParts:
    """Everything a build made, as its steps saved it."""

    store: str
    build_id: str
    job_id: str
    name: str
    brief: dict[str, str]
    inputs: dict[str, Any]
    products: list[StoreProduct]
    brand: dict[str, Any]
    design: Record
    layout: Record
    copies: dict[str, Record]
    reviews: list[dict[str, Any]]
    records: dict[str, Record]  # every step this build ran or resumed, by step name
    currency: str = ""  # ISO 4217, from the store record ('' for a store nobody added)


def design_summary(tokens: dict[str, Any]) -> dict[str, Any]:
    """The tokens and their measured contrast, for the critic."""
    return {
        "palette": tokens["palette"],
        "contrast": [c.as_dict() for c in checks.contrast_report(tokens["palette"])],
        "typography": tokens["typography"],
        "shape": tokens["shape"],
    }


def page_summary(
    plan: dict[str, Any], copies: dict[str, Record], products: list[StoreProduct]
) -> list[dict[str, Any]]:
    """The page section by section (intent, words, product titles), for the critic."""
    titles = {p.id: p.title for p in products}
    return [
        {
            "type": section["type"],
            "intent": section["intent"],
            "copy": (copies.get(section["type"]) or {}).get("output"),
            "products": [titles[i] for i in section["product_ids"] if i in titles],
        }
        for section in plan["sections"]
    ]


def _sections(parts: BuildParts) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    for planned in parts.layout["output"]["sections"]:
        words = parts.copies[planned["type"]]["output"]
        if words is None:  # the copy could not meet the section's needs: the section is left out
            continue
        n = len(sections) + 1
        sections.append(
            {
                "id": f"{n:02d}-{planned['type']}",
                "type": planned["type"],
                "intent": planned["intent"],
                "copy": words,
                "product_ids": planned["product_ids"],
                "sample_content": SECTIONS[planned["type"]].sample_content,
                "fragment": f"sections/{n:02d}-{planned['type']}.html",
            }
        )
    return sections


def theme_document(parts: BuildParts, generated_at: str) -> dict[str, Any]:
    """`theme.json`'s content: everything the storefront needs, and how it came to be."""
    tokens = parts.design["output"]
    model_css, css_dropped = checks.sanitized_model_css(tokens)
    sections = _sections(parts)
    shown = {pid for s in sections for pid in s["product_ids"]}
    # Only what the published theme carries: a part redone after review replaced its notes.
    used = [
        parts.design,
        parts.layout,
        *(parts.copies[s["type"]] for s in parts.layout["output"]["sections"]),
    ]
    last = parts.reviews[-1]
    tokens_out = {k: tokens[k] for k in ("palette", "typography", "shape")}
    hint = parts.brief.get("palette_hint")
    # Check messages and review notes quote model text: defang it like every other field.
    return defang_tree(
        {
            "schema_version": SCHEMA_VERSION,
            "store": parts.store,
            "build_id": parts.build_id,
            "name": parts.name,
            "locale": normalize(parts.brief.get("locale")),
            "currency": parts.currency,
            "brief": parts.brief,
            "brand": parts.brand,
            "tokens": {
                **tokens_out,
                "fonts": {
                    "heading": FONT_STACKS[tokens["typography"]["heading_font"]][0],
                    "body": FONT_STACKS[tokens["typography"]["body_font"]][0],
                },
                "css_variables": css_variables(tokens_out),
            },
            "model_css": model_css,
            "sections": sections,
            "products": [p.for_theme() for p in parts.products if p.id in shown],
            "checks": {
                "contrast": [c.as_dict() for c in checks.contrast_report(tokens["palette"])],
                "palette_hint": {
                    "colours": [c.as_dict() for c in hint_colours(hint)],
                    "hues": [r.as_dict() for r in hue_report(tokens["palette"], hint)],
                },
                "adjustments": [note for record in used for note in record.get("notes", [])],
                "css_dropped": css_dropped,
                "rounds": {step: r["checks"] for step, r in parts.records.items() if "checks" in r},
            },
            "review": {
                "rounds": len(parts.reviews),
                "approved": bool(last["approved"]),
                "summary": last["summary"],
                "open_notes": [] if last["approved"] else last["revisions"],
                "history": parts.reviews,
            },
            "meta": theme_meta(parts, generated_at),
        }
    )


def theme_meta(parts: BuildParts, generated_at: str) -> dict[str, Any]:
    """The `meta` block: prompts and models by agent, and the cost of every step, by agent."""
    records = parts.records.values()
    rows = [row for record in records for row in record["usage"]]
    cost: dict[str, int] = {}
    calls: dict[str, int] = {}
    for row in rows:
        cost[row["agent"]] = cost.get(row["agent"], 0) + row["cost_nano"]
        calls[row["agent"]] = calls.get(row["agent"], 0) + 1
    prompts = {r["prompt"].split("@")[0]: r["prompt"] for r in records}
    models = {r["prompt"].split("@")[0]: r["model"] for r in records}
    ordered = [a for a in AGENT_ORDER if a in prompts]
    all_cached = bool(rows) and all(r["served"] == Served.GATEWAY_CACHE.value for r in rows)
    return {
        "pipeline": PIPELINE,
        "prompt": PIPELINE,
        "prompt_version": "+".join(prompts[a].split("@")[1] for a in ordered),
        "prompt_ref": "+".join(prompts[a] for a in ordered),
        "prompts": {a: prompts[a] for a in ordered},
        "model": "+".join(dict.fromkeys(models[a] for a in ordered)),
        "models": {a: models[a] for a in ordered},
        "generated_at": generated_at,
        "input_hash": input_hash(
            PIPELINE, parts.store, parts.inputs.get("brief"), parts.inputs.get("products")
        ),
        "cost_usd": str(nano_to_usd(sum(cost.values()))),
        "cost_by_agent": {a: str(nano_to_usd(cost.get(a, 0))) for a in ordered},
        "served": (Served.GATEWAY_CACHE if all_cached else Served.FRESH).value,
        "tokens": {
            "prompt": sum(r["prompt_tokens"] for r in rows),
            "cached_prompt": sum(r["cached_prompt_tokens"] for r in rows),
            "completion": sum(r["completion_tokens"] for r in rows),
        },
        "calls": len(rows),
        "calls_by_agent": {a: calls.get(a, 0) for a in ordered},
        "job_id": parts.job_id,
        "build_id": parts.build_id,
        "store": parts.store,
    }
