"""Theme builds: a brief and a store's products in, a published storefront theme out.

Steps: brand -> design -> layout -> copy (one call per section, in parallel) -> review
(at most two rounds; the critic may send named parts back once) -> publish the build's
files and its draft; the storefront's pointer moves only when the store's policy allows
(`drafts_review.propose_theme`: `auto`, checks passed, critic approved). Every
agent's output passes deterministic checks before the critic sees it; a failing check
goes back to the agent that made it, with the numbers, for one more round, and what
still fails after that is fixed deterministically (and recorded in `theme.json`).

Each finished step is saved (`StepStore`) before the next starts, so a redelivered
build resumes from its last finished step and re-renders byte-identical files.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from adapters.errors import InvalidInput, InvalidOutput, NotFound, PermanentError
from adapters.logs import get_logger
from adapters.store import ObjectStore
from adapters.stores import StoreRegistry
from agents.base import Agent, AgentRun
from agents.theme import (
    BrandStrategistAgent,
    LayoutPlannerAgent,
    SectionCopywriterAgent,
    ThemeCriticAgent,
    ThemeDesignerAgent,
)
from agents.theme.inputs import StoreProduct, ThemeBrief, parse_brief, store_name, store_products
from agents.usage import CallContext
from domain.keys import (
    catalog_snapshot_key,
    check_build_id,
    check_store,
    theme_build_prefix,
    theme_pointer_key,
)
from domain.themes import checks
from domain.themes.catalogue import SECTIONS
from domain.themes.render import render_files, render_theme_json
from domain.themes.safety import file_problems
from pipelines.drafts_review import propose_theme
from pipelines.publish import now_iso
from pipelines.services import Services
from pipelines.theme_document import PIPELINE, BuildParts, design_summary, page_summary, theme_document
from pipelines.theme_publish import MANIFEST, publish_files
from pipelines.theme_steps import StepStore

CHECK_ROUNDS = 2  # the agent's answer, then one more round with the failing numbers
REVIEW_ROUNDS = 2

Progress = Callable[[str], None]
Variables = Callable[[list[str] | None, dict[str, Any] | None], dict[str, Any]]
log = get_logger("pipelines.theme_build")


@dataclass
class BuildResult:
    """Where a build was published and what it cost."""

    store: str
    build_id: str
    keys: list[str]
    pointer: dict[str, Any] | None  # None while the build's draft waits for review
    meta: dict[str, Any]
    adjustments: list[dict[str, Any]]
    review: dict[str, Any]
    draft_id: str = ""
    live: bool = False

    @property
    def theme_key(self) -> str:
        return theme_build_prefix(self.store, self.build_id) + MANIFEST

    @property
    def preview_key(self) -> str:
        return theme_build_prefix(self.store, self.build_id) + "preview.html"

    @property
    def pointer_key(self) -> str:
        return theme_pointer_key(self.store)


def new_build_id() -> str:
    return str(uuid.uuid4())


def build_id_for(job_id: str) -> str:
    """The build id of a job: its Dramatiq message id (a lower-case UUID), so `status` finds it."""
    return check_build_id(job_id.lower()) if job_id else new_build_id()


def save_catalog(objects: ObjectStore, store: str, payload: Any) -> int:
    """Write a store's catalog snapshot from a products export; returns how many products it holds."""
    # The snapshot has one writer, shared with personalization, so it has one format.
    from pipelines.catalog_snapshot import write_snapshot

    write_snapshot(objects, store, payload)
    return len(load_catalog(objects, store))


def load_catalog(objects: ObjectStore, store: str) -> list[StoreProduct]:
    """The store's products from its catalog snapshot; a missing snapshot is the caller's to fix."""
    key = catalog_snapshot_key(store)
    try:
        data = objects.get(key).json()
    except NotFound:
        raise InvalidInput(
            f"store {store!r} has no catalog snapshot at {key}: load it with `wandstore-agents catalog "
            f"upload {store} FILE` (PUT /v1/stores/{store}/catalog) or `catalog sync {store}` "
            "(or pass --products FILE to `wandstore-agents run theme-build`)"
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"{key} is not valid JSON: {exc}") from None
    # Only what shoppers may see is featured: never a draft, archived, unpublished or sold-out product.
    from pipelines.catalog_snapshot import live_rows

    products = store_products(live_rows(data))
    if not products:
        raise InvalidInput(
            f"{key} holds no valid products shoppers may see (drafts, archived, unpublished and "
            "sold-out products are never featured)"
        )
    return products


def _usage_rows(run: AgentRun[Any]) -> list[dict[str, Any]]:
    return [
        {
            "agent": r.agent,
            "prompt": f"{r.prompt}@{r.prompt_version}",
            "model": r.model,
            "cost_nano": r.cost_nano,
            "prompt_tokens": r.usage.prompt_tokens,
            "cached_prompt_tokens": r.usage.cached_prompt_tokens,
            "completion_tokens": r.usage.completion_tokens,
            "served": r.served.value,
            "log_id": r.gateway_log_id,
        }
        for r in run.records
    ]


class ThemeBuild:
    """One build of one store's theme; `run()` may be called again after a crash to resume."""

    def __init__(
        self,
        svc: Services,
        store: str,
        brief: ThemeBrief,
        build_id: str,
        *,
        job_id: str = "",
        progress: Progress | None = None,
    ) -> None:
        self.svc = svc
        self.store = check_store(store)
        self.brief = brief
        self.build_id = check_build_id(build_id)
        self.steps = StepStore(svc.redis, build_id)
        self.ctx = CallContext(store=store, pipeline=PIPELINE, job_id=job_id or build_id)
        self.progress = progress or (lambda _: None)
        runtime = svc.runtime
        self.strategist = BrandStrategistAgent(runtime)
        self.designer = ThemeDesignerAgent(runtime)
        self.planner = LayoutPlannerAgent(runtime)
        self.copywriter = SectionCopywriterAgent(runtime)
        self.critic = ThemeCriticAgent(runtime)
        self.records: dict[str, dict[str, Any]] = {}
        self.currency = ""  # the store record's, frozen with the inputs

    # --- steps ---------------------------------------------------------------

    async def run(self) -> BuildResult:
        products = self._inputs()
        name = store_name(self.store, products)
        self.progress("brand")
        brand = (await self._plain("brand", self.strategist, self._brand_vars(name, products)))["output"]
        self.progress("design")
        design = await self._design("design", brand)
        self.progress("layout")
        layout = await self._layout("layout", brand, products)
        copies = await self._copy_all(layout["output"]["sections"], brand, name, products, tag="", show=True)
        design, layout, copies, reviews = await self._review(brand, design, layout, copies, name, products)
        self.progress("publish")
        return self._publish(name, products, brand, design, layout, copies, reviews)

    def _inputs(self) -> list[StoreProduct]:
        """The brief and the products, frozen at the first attempt (a resumed build sees the same)."""
        saved = self.steps.get("inputs")
        brief = self.brief.model_dump()
        if saved is None:
            products = load_catalog(self.svc.store, self.store)
            # A brief without a locale is in the store's; prices are in the store's currency.
            record = StoreRegistry(self.svc.redis).get(self.store)
            brief["locale"] = brief.get("locale") or (record.locale if record else "en")
            saved = {
                "store": self.store,
                "brief": brief,
                "products": [asdict(p) for p in products],
                "currency": record.currency if record else "",
            }
            self.steps.put("inputs", saved)
        else:
            kept = {**saved["brief"], "locale": saved["brief"].get("locale")}
            if saved["store"] != self.store or kept != {**brief, "locale": brief["locale"] or kept["locale"]}:
                raise InvalidInput(
                    f"build {self.build_id} was started for another store or brief; use a new build id"
                )
        self.brief = ThemeBrief.model_validate(saved["brief"])
        self.currency = saved.get("currency", "")
        return [StoreProduct(**{**p, "tags": tuple(p["tags"])}) for p in saved["products"]]

    def _brand_vars(self, name: str, products: list[StoreProduct]) -> dict[str, Any]:
        return self.strategist.variables(store_name=name, brief=self.brief, products=products)

    async def _plain(self, step: str, agent: Agent[Any], variables: dict[str, Any]) -> dict[str, Any]:
        """An agent step without deterministic checks (brand, review)."""
        saved = self.steps.get(step)
        if saved is None:
            run = await agent.run(self.ctx, variables)
            saved = {
                "output": run.output.model_dump(),
                "usage": _usage_rows(run),
                "prompt": run.prompt.ref,
                "model": run.prompt.meta.model,
            }
            self.steps.put(step, saved)
        self.records[step] = saved
        return saved

    async def _checked(
        self,
        step: str,
        agent: Agent[Any],
        variables: Variables,
        problems: Callable[[dict[str, Any]], list[str]],
        fix: Callable[[dict[str, Any]], tuple[Any, list[dict[str, Any]]]],
        *,
        feedback: list[str] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An agent step whose output must pass checks: failures go back with the numbers, then a fix-up."""
        saved = self.steps.get(step)
        if saved is not None:
            self.records[step] = saved
            return saved
        usage: list[dict[str, Any]] = []
        rounds: list[dict[str, Any]] = []
        for n in range(1, CHECK_ROUNDS + 1):
            run = await agent.run(self.ctx, variables(feedback, previous))
            usage.extend(_usage_rows(run))
            out = run.output.model_dump()
            found = problems(out)
            rounds.append({"round": n, "problems": found})
            if not found:
                break
            log.info("theme_check_failed", step=step, agent=agent.name, round=n, problems=found[:8])
            feedback, previous = found, out
        try:
            fixed, notes = fix(out)
        except checks.UnfixableContrast as exc:
            raise InvalidOutput(
                f"{run.prompt.ref}: the palette fails WCAG 2.1 AA after {len(rounds)} round(s) "
                f"and cannot be adjusted: {exc}"
            ) from None
        saved = {
            "output": fixed,
            "checks": rounds,
            "notes": notes,
            "usage": usage,
            "prompt": run.prompt.ref,
            "model": run.prompt.meta.model,
        }
        self.steps.put(step, saved)
        self.records[step] = saved
        return saved

    async def _design(
        self, step: str, brand: dict[str, Any], feedback: list[str] | None = None, previous: Any = None
    ) -> dict[str, Any]:
        def variables(fb: list[str] | None, prev: dict[str, Any] | None) -> dict[str, Any]:
            return self.designer.variables(brand=brand, brief=self.brief, feedback=fb, previous=prev)

        return await self._checked(
            step,
            self.designer,
            variables,
            lambda tokens: checks.design_problems(tokens, self.brief.palette_hint),
            lambda tokens: checks.fix_design(tokens, self.brief.palette_hint),
            feedback=feedback,
            previous=previous,
        )

    async def _layout(
        self,
        step: str,
        brand: dict[str, Any],
        products: list[StoreProduct],
        feedback: list[str] | None = None,
        previous: Any = None,
    ) -> dict[str, Any]:
        ids = [p.id for p in products]

        def variables(fb: list[str] | None, prev: dict[str, Any] | None) -> dict[str, Any]:
            return self.planner.variables(brand=brand, products=products, feedback=fb, previous=prev)

        return await self._checked(
            step,
            self.planner,
            variables,
            lambda plan: checks.layout_problems(plan, ids),
            lambda plan: checks.fix_layout(plan, ids),
            feedback=feedback,
            previous=previous,
        )

    async def _copy(
        self,
        step: str,
        section: dict[str, Any],
        brand: dict[str, Any],
        name: str,
        products: list[StoreProduct],
        feedback: list[str] | None = None,
        previous: Any = None,
    ) -> dict[str, Any]:
        spec = SECTIONS[section["type"]]
        by_id = {p.id: p for p in products}
        shown = [by_id[i] for i in section["product_ids"] if i in by_id]

        def variables(fb: list[str] | None, prev: dict[str, Any] | None) -> dict[str, Any]:
            return self.copywriter.variables(
                spec=spec,
                intent=section["intent"],
                brand=brand,
                store_name=name,
                products=shown,
                feedback=fb,
                previous=prev,
                locale=self.brief.locale,
            )

        return await self._checked(
            step,
            self.copywriter,
            variables,
            lambda words: checks.copy_problems(spec, words),
            lambda words: checks.fix_copy(spec, words, self.brief.locale),
            feedback=feedback,
            previous=previous,
        )

    async def _copy_all(
        self,
        sections: list[dict[str, Any]],
        brand: dict[str, Any],
        name: str,
        products: list[StoreProduct],
        *,
        tag: str,
        show: bool,
        notes: dict[str, list[str]] | None = None,
        previous: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Copy for `sections`, one call each, concurrently; every finished section is saved at once."""
        total = len(sections)
        done = sum(1 for s in sections if self.steps.get(f"copy:{s['type']}{tag}") is not None)
        if show:
            self.progress(f"copy {done}/{total}")

        async def one(section: dict[str, Any]) -> dict[str, Any]:
            nonlocal done
            kind = section["type"]
            record = await self._copy(
                f"copy:{kind}{tag}",
                section,
                brand,
                name,
                products,
                feedback=(notes or {}).get(kind),
                previous=(previous or {}).get(kind, {}).get("output"),
            )
            done += 1
            if show:
                self.progress(f"copy {done}/{total}")
            return record

        # Let every section finish (and be saved) before raising the first failure.
        results = await asyncio.gather(*(one(s) for s in sections), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return {s["type"]: r for s, r in zip(sections, results, strict=True)}  # type: ignore[misc]

    async def _review(
        self,
        brand: dict[str, Any],
        design: dict[str, Any],
        layout: dict[str, Any],
        copies: dict[str, dict[str, Any]],
        name: str,
        products: list[StoreProduct],
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """At most two critic rounds; named parts go back to their agents once, between them."""
        reviews: list[dict[str, Any]] = []
        for rnd in range(1, REVIEW_ROUNDS + 1):
            self.progress("review")
            self.svc.status.update(self.ctx.job_id, review_round=rnd)
            variables = self.critic.variables(
                brief=self.brief.as_data(),
                brand=brand,
                design=design_summary(design["output"]),
                sections=page_summary(layout["output"], copies, products),
                round_no=rnd,
            )
            critique = (await self._plain(f"review:{rnd}", self.critic, variables))["output"]
            reviews.append(critique)
            if rnd == REVIEW_ROUNDS or critique["approved"] or not critique["revisions"]:
                break
            tag = f"@{rnd + 1}"
            wanted: dict[str, list[str]] = {}
            for rev in critique["revisions"]:
                part = f"copy:{rev['section']}" if rev["part"] == "copy" else rev["part"]
                wanted.setdefault(part, []).append(rev["problem"])
            log.info("theme_revisions", build_id=self.build_id, round=rnd, parts=sorted(wanted))
            if "design" in wanted:
                design = await self._design("design" + tag, brand, wanted["design"], design["output"])
            if "layout" in wanted:
                layout = await self._layout(
                    "layout" + tag, brand, products, wanted["layout"], layout["output"]
                )
            sections = layout["output"]["sections"]
            redo = [s for s in sections if f"copy:{s['type']}" in wanted or s["type"] not in copies]
            copy_notes = {
                s["type"]: wanted[f"copy:{s['type']}"] for s in redo if f"copy:{s['type']}" in wanted
            }
            redone = await self._copy_all(
                redo, brand, name, products, tag=tag, show=False, notes=copy_notes, previous=copies
            )
            copies = {**copies, **redone}
        return design, layout, copies, reviews

    # --- publish ---------------------------------------------------------------

    def _publish(
        self,
        name: str,
        products: list[StoreProduct],
        brand: dict[str, Any],
        design: dict[str, Any],
        layout: dict[str, Any],
        copies: dict[str, dict[str, Any]],
        reviews: list[dict[str, Any]],
    ) -> BuildResult:
        render = self.steps.get("render")
        if render is None:
            render = {"generated_at": now_iso()}
            self.steps.put("render", render)
        parts = BuildParts(
            store=self.store,
            build_id=self.build_id,
            job_id=self.ctx.job_id,
            name=name,
            brief=self.brief.as_data(),
            inputs=self.steps.get("inputs") or {},
            products=products,
            brand=brand,
            design=design,
            layout=layout,
            copies=copies,
            reviews=reviews,
            currency=self.currency,
            # Sorted: steps finish in any order (copy runs concurrently), and a resumed build must
            # render the same bytes, or publishing meets its own earlier files as a conflict.
            records={step: self.records[step] for step in sorted(self.records)},
        )
        doc = theme_document(parts, render["generated_at"])
        files = render_files(doc)
        files.append(render_theme_json(doc, files))
        unsafe = [p for f in files for p in file_problems(f.path, f.text())]
        if unsafe:
            raise PermanentError(f"refusing to publish theme build {self.build_id}: " + "; ".join(unsafe[:5]))
        keys = publish_files(self.svc.store, self.store, self.build_id, files)
        # The build's files are written; whether it goes live is the store's policy (drafts_review).
        published = self.steps.get("published")
        if published is None:
            logs = [row.get("log_id") for r in self.records.values() for row in r["usage"]]
            proposed = propose_theme(
                self.svc.redis,
                self.svc.store,
                store=self.store,
                build_id=self.build_id,
                doc=doc,
                job_id=self.ctx.job_id,
                log_ids=[x for x in logs if x],
            )
            published = {"pointer": proposed.pointer, "draft_id": proposed.draft_id, "live": proposed.live}
            self.steps.put("published", published)
        pointer = published["pointer"]
        meta = doc["meta"]
        log.info(
            "theme_published",
            store=self.store,
            build_id=self.build_id,
            files=len(keys),
            cost_usd=meta["cost_usd"],
            calls=meta["calls"],
            approved=doc["review"]["approved"],
            draft_id=published.get("draft_id"),
            live=bool(published.get("live", True)),
        )
        return BuildResult(
            self.store,
            self.build_id,
            keys,
            pointer,
            meta,
            doc["checks"]["adjustments"],
            doc["review"],
            draft_id=str(published.get("draft_id") or ""),
            live=bool(published.get("live", True)),
        )


async def build_theme(
    svc: Services,
    store: str,
    brief: Any,
    *,
    build_id: str | None = None,
    job_id: str = "",
    progress: Progress | None = None,
) -> BuildResult:
    """Validate, then run (or resume) one theme build. Invalid input writes nothing."""
    check_store(store)
    parsed = parse_brief(brief)
    build = ThemeBuild(svc, store, parsed, build_id or new_build_id(), job_id=job_id, progress=progress)
    return await build.run()


def status_progress(svc: Services, job_id: str) -> Progress:
    """A progress callback that records each step in the job's status (what `status ID` shows)."""

    def report(step: str) -> None:
        svc.status.update(job_id, progress=step)

    return report
