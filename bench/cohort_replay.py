"""The day replayed through the service's cohort keying and its caches, in memory: no Redis, no model.

What the service does per request (`pipelines/personalize.py`), and how it is replayed here:

- **Keying.** `parse_context` then `cohort_of` reduce the context to a `Cohort`; the result-cache
  key is `cache_key(PIPELINE, store, prompt.ref, model, variables)`, where `variables` are the
  cohort's signals and the prompt rows of `shortlist(catalog, cohort)`. So two requests share a
  generation exactly when they share store, `Cohort.key` and shortlist rows. The replay calls
  the real `parse_context` and `cohort_of` once per distinct context (the header fields and the
  browsing fields separately: `cohort_of` reads each field on its own), `Cohort.key` once per
  distinct cohort, and the real `shortlist` once per (store, top categories); the tests check
  this partition against the service's own digest.
- **The result cache.** A miss starts one generation (single flight: requests arriving while
  it runs join it); the entry is stored when it finishes, `gen_latency_s` later, for
  `personalization_ttl_s`; the next request after that misses again. There is no refresh
  ahead of expiry in the service, so none here.
- **AI Gateway's cache.** A generation is a model call unless the gateway still holds the same
  request (same key: same messages), stored `gateway_cache_ttl` (the prompt's front matter) after
  the last paid call; those answers cost 0.
- **Catalog edits.** An edit that changes a product's candidate row (price, title, tags) changes
  the digest of every cohort whose shortlist holds that product, once workers re-read the
  snapshot (`catalog_snapshot_ttl_s`): the next request of such a cohort misses.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.storefront_traffic import EDIT_CHANGES_COPY, EDIT_CHANGES_ROW, Traffic, catalog_edits

FIELDS = ("segment", "locale", "device", "referrer", "categories", "cart")
ANY = "*"  # a field left out of the cohort


@dataclass(frozen=True)
class Knobs:
    """One setting of what moves the cost; `None` means the service's shipped default."""

    label: str
    fields: frozenset[str] = frozenset(FIELDS)
    top_categories: int | None = None  # `pipelines.cohorts.MAX_TOP_CATEGORIES`
    language_only: bool = False  # "en-us" -> "en"
    ttl_s: int | None = None  # `personalization_ttl_s`
    edits_per_store: float = 10.0


@dataclass(frozen=True)
class Service:
    """The shipped defaults the replay applies (settings fields and prompt front matter)."""

    ttl_s: int
    snapshot_ttl_s: float
    gateway_ttl_s: int
    top_categories: int
    prompt_ref: str
    model: str
    min_ranked: int

    @classmethod
    def defaults(cls) -> Service:
        from adapters.settings import Settings
        from agents.schemas.personalization import MIN_RANKED
        from bench.call_cost import prompts
        from pipelines.cohorts import MAX_TOP_CATEGORIES

        settings = Settings.model_construct()  # the field defaults, not this shell's environment
        prompt = prompts().get("personalizer")
        return cls(
            ttl_s=settings.personalization_ttl_s,
            snapshot_ttl_s=settings.catalog_snapshot_ttl_s,
            gateway_ttl_s=prompt.meta.gateway_cache_ttl or 0,
            top_categories=MAX_TOP_CATEGORIES,
            prompt_ref=prompt.ref,
            model=prompt.meta.model,
            min_ranked=MIN_RANKED,
        )


@dataclass
class Outcome:
    """What one knob setting cost over the day."""

    knobs: Knobs
    requests: int
    generations: int  # result-cache misses: a generation started
    paid_calls: int  # generations AI Gateway's cache did not answer
    cohorts: int  # distinct (store, cohort) seen
    copy_calls: int  # product copy regenerated for edits that changed its input
    ttl_s: int

    @property
    def hit_ratio(self) -> float:
        return 1 - self.generations / self.requests if self.requests else 0.0

    def per_million(self, count: int) -> float:
        return count * 1_000_000 / self.requests if self.requests else 0.0


@contextlib.contextmanager
def top_categories(n: int) -> Iterator[None]:
    """`cohort_of` with `MAX_TOP_CATEGORIES = n` (the constant it reads at each call)."""
    import pipelines.cohorts as cohorts

    before = cohorts.MAX_TOP_CATEGORIES
    cohorts.MAX_TOP_CATEGORIES = n
    try:
        yield
    finally:
        cohorts.MAX_TOP_CATEGORIES = before


@dataclass
class Layer:
    """The day keyed by `cohort_of` at one `MAX_TOP_CATEGORIES`: per request an atom, a distinct
    (store, header fields, browsing fields)."""

    atom_of: list[int]  # per request
    atoms: list[tuple[int, int, int]]  # (store, header cohort id, browse cohort id)
    browse_fields: list[tuple[tuple[str, ...], str]]  # browse cohort id -> (top_categories, cart)


@dataclass
class Keyed:
    """One cohort granularity: each atom's identity (its result-cache key but for the catalog's
    version) and each identity's shortlist group (store, top categories)."""

    of_atom: list[int]
    group_of: list[int]  # identity -> group
    groups: list[tuple[int, tuple[str, ...]]]
    # edits a day -> group -> when its shortlist changed
    invalidations: dict[float, dict[int, list[float]]] = field(default_factory=dict)
    _of_request: list[int] = field(default_factory=list, repr=False)

    def of_request(self, layer: Layer) -> list[int]:
        """Each request's identity (kept: every TTL and edit rate replays the same list)."""
        if not self._of_request:
            of_atom = self.of_atom
            self._of_request = [of_atom[a] for a in layer.atom_of]
        return self._of_request


@dataclass
class Replay:
    """The day keyed once, replayed under any number of knob settings."""

    traffic: Traffic
    service: Service = field(default_factory=Service.defaults)
    gen_latency_s: float = 2.0  # a generation's model time (the service's p50 miss is ~0.3-2 s)
    gateway_hit_s: float = 0.1
    _catalogs: list[Any] = field(default_factory=list, repr=False)
    _header_fields: list[tuple[str, str, str, str]] = field(default_factory=list, repr=False)
    _header_of: list[int] = field(default_factory=list, repr=False)  # raw header -> header cohort id
    _contexts: list[Any] = field(default_factory=list, repr=False)
    _layers: dict[int, Layer] = field(default_factory=dict, repr=False)
    _keyed: dict[tuple[Any, ...], Keyed] = field(default_factory=dict, repr=False)
    _shortlists: dict[tuple[int, tuple[str, ...]], frozenset[str]] = field(default_factory=dict, repr=False)

    # --- keying with the service's functions --------------------------------------

    def prepare(self, progress: Callable[[str], None] | None = None) -> None:
        """Parse every distinct context once (catalogs, header fields, browsing fields)."""
        from pipelines.cohorts import Candidate, Catalog, cohort_of, parse_context

        say = progress or (lambda _: None)
        say("catalogs")
        self._catalogs = [
            Catalog.of(Candidate.model_validate(row) for row in store.rows()) for store in self.traffic.stores
        ]
        # Fewer candidates than MIN_RANKED and the service makes no call (the default ordering serves).
        small = [
            store.slug
            for store, catalog in zip(self.traffic.stores, self._catalogs, strict=True)
            if len(catalog.products) < self.service.min_ranked
        ]
        if small:
            raise ValueError(f"catalogs too small to personalize, which this replay does not model: {small}")
        empty = Catalog.of([])
        say("header fields")
        ids: dict[tuple[str, str, str, str], int] = {}
        for segment, locale, device, referrer in self.traffic.headers:
            ctx = parse_context(
                {"segment": segment, "locale": locale, "device": device, "referrer": referrer}
            )
            c = cohort_of(ctx, empty)
            self._header_of.append(ids.setdefault((c.segment, c.locale, c.device, c.referrer), len(ids)))
        self._header_fields = list(ids)
        say("browsing fields")
        self._contexts = [
            parse_context({"viewed": list(viewed), "carted": list(carted)})
            for _, viewed, carted in self.traffic.browses
        ]
        self.layer(self.service.top_categories)

    def layer(self, top: int) -> Layer:
        """The day keyed with `cohort_of` at `MAX_TOP_CATEGORIES = top` (computed once per `top`)."""
        from pipelines.cohorts import cohort_of

        got = self._layers.get(top)
        if got is not None:
            return got
        fields: dict[tuple[tuple[str, ...], str], int] = {}
        browse_of = []
        with top_categories(top):
            for (s, _, _), ctx in zip(self.traffic.browses, self._contexts, strict=True):
                c = cohort_of(ctx, self._catalogs[s])
                browse_of.append(fields.setdefault((c.top_categories, c.cart), len(fields)))
        atom_ids: dict[tuple[int, int, int], int] = {}
        t, header_of = self.traffic, self._header_of
        atom_of = [
            atom_ids.setdefault((s, header_of[h], browse_of[b]), len(atom_ids))
            for s, h, b in zip(t.store_of, t.header_of, t.browse_of, strict=True)
        ]
        got = self._layers[top] = Layer(atom_of, list(atom_ids), list(fields))
        return got

    def keyed(self, knobs: Knobs) -> tuple[Layer, Keyed]:
        """Each atom's cohort identity under `knobs`' granularity (computed once per granularity).

        At the service's own granularity the identity is (store, `Cohort.key`), the real function;
        a knob setting that drops fields keys by the remaining fields, which is what `Cohort.key`
        hashes, so the partition is the same."""
        top = knobs.top_categories if knobs.top_categories is not None else self.service.top_categories
        layer = self.layer(top)
        keep = knobs.fields
        signature = (top, keep, knobs.language_only)
        got = self._keyed.get(signature)
        if got is not None:
            return layer, got
        headers = []
        for segment, locale, device, referrer in self._header_fields:
            if knobs.language_only:
                locale = locale.split("-")[0]
            headers.append(
                (
                    segment if "segment" in keep else ANY,
                    locale if "locale" in keep else ANY,
                    device if "device" in keep else ANY,
                    referrer if "referrer" in keep else ANY,
                )
            )
        browses = [
            (cats if "categories" in keep else (), cart if "cart" in keep else ANY)
            for cats, cart in layer.browse_fields
        ]
        real = keep == frozenset(FIELDS) and not knobs.language_only and top == self.service.top_categories
        identity: dict[tuple[int, Any], int] = {}
        groups: dict[tuple[int, tuple[str, ...]], int] = {}
        group_of: list[int] = []
        of_atom = []
        for s, h, b in layer.atoms:
            fields = (*headers[h], *browses[b])
            key = (s, cohort_key(fields) if real else fields)
            i = identity.get(key)
            if i is None:
                i = identity[key] = len(identity)
                group_of.append(groups.setdefault((s, browses[b][0]), len(groups)))
            of_atom.append(i)
        got = self._keyed[signature] = Keyed(of_atom, group_of, list(groups))
        return layer, got

    def catalog(self, store: int) -> Any:
        """Store `store`'s catalog as the service holds it (a `pipelines.cohorts.Catalog`)."""
        return self._catalogs[store]

    def shortlist_ids(self, store: int, top: tuple[str, ...]) -> frozenset[str]:
        """Ids in `shortlist(catalog, cohort)` for a cohort with these top categories."""
        from pipelines.cohorts import Cohort, shortlist

        ids = self._shortlists.get((store, top))
        if ids is None:
            cohort = Cohort(ANY, ANY, ANY, ANY, top, ANY)  # only top_categories decides a shortlist
            ids = frozenset(c.id for c in shortlist(self._catalogs[store], cohort))
            self._shortlists[(store, top)] = ids
        return ids

    def invalidations(self, keyed: Keyed, edits_per_store: float) -> dict[int, list[float]]:
        """Per shortlist group: when its digest changed (a row edit to one of its candidates,
        seen once workers re-read the snapshot)."""
        from pipelines.cohorts import MAX_PROMPT_CANDIDATES

        got = keyed.invalidations.get(edits_per_store)
        if got is not None:
            return got
        by_category: dict[tuple[int, str], list[int]] = {}
        by_store: dict[int, list[int]] = {}
        for g, (s, cats) in enumerate(keyed.groups):
            by_store.setdefault(s, []).append(g)
            for name in cats:
                by_category.setdefault((s, name), []).append(g)
        got = {}
        for e in catalog_edits(self.traffic, edits_per_store):
            if not EDIT_CHANGES_ROW[e.kind]:
                continue
            product = self._catalogs[e.store].products[e.product]
            # A product outside a cohort's categories is in its shortlist only among the
            # catalog's first MAX_PROMPT_CANDIDATES: the shortlist is the cohort's categories,
            # then the rest, both in catalog order. Only those groups can have changed.
            if e.product < MAX_PROMPT_CANDIDATES:
                maybe = by_store.get(e.store, [])
            else:
                maybe = by_category.get((e.store, product.category), [])
            for g in maybe:
                if product.id in self.shortlist_ids(*keyed.groups[g]):
                    got.setdefault(g, []).append(e.t + self.service.snapshot_ttl_s)
        keyed.invalidations[edits_per_store] = got
        return got

    # --- one knob setting --------------------------------------------------------

    def run(self, knobs: Knobs) -> Outcome:
        layer, keyed = self.keyed(knobs)
        invalid = self.invalidations(keyed, knobs.edits_per_store)
        ttl = knobs.ttl_s if knobs.ttl_s is not None else self.service.ttl_s
        generations, paid = self._simulate(layer, keyed, invalid, ttl)
        copy_calls = sum(
            1 for e in catalog_edits(self.traffic, knobs.edits_per_store) if EDIT_CHANGES_COPY[e.kind]
        )
        return Outcome(knobs, len(layer.atom_of), generations, paid, len(keyed.group_of), copy_calls, ttl)

    def _simulate(
        self, layer: Layer, keyed: Keyed, invalid: dict[int, list[float]], ttl: int
    ) -> tuple[int, int]:
        """Result cache and gateway cache over the day: (generations, paid calls)."""
        entry: dict[int, float] = {}  # identity -> when its result-cache entry stops serving
        gateway: dict[int, float] = {}  # identity -> when AI Gateway's cached answer stops serving
        latency, hit_s, gw_ttl = self.gen_latency_s, self.gateway_hit_s, self.service.gateway_ttl_s
        group_of = keyed.group_of
        generations = paid = 0
        expires = entry.get
        for t, k in zip(self.traffic.times, keyed.of_request(layer), strict=True):
            if t < expires(k, -1.0):
                continue  # a hit, or joined a generation in flight
            generations += 1
            # Until the next edit to its shortlist: then the digest (and the gateway's key) changes.
            until = math.inf
            times = invalid.get(group_of[k])
            if times:
                j = bisect.bisect_right(times, t)
                if j < len(times):
                    until = times[j]
            if t < gateway.get(k, -1.0):
                entry[k] = min(t + hit_s + ttl, until)
            else:
                paid += 1
                gateway[k] = min(t + latency + gw_ttl, until)
                entry[k] = min(t + latency + ttl, until)
        return generations, paid


@functools.cache
def cohort_key(fields: tuple[Any, ...]) -> str:
    """`Cohort.key` of the cohort with these fields, computed once per distinct cohort."""
    from pipelines.cohorts import Cohort

    return Cohort(*fields).key
