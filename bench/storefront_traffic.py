"""A synthetic storefront day: stores, catalogs, shoppers, sessions, and the catalog edits.

Deterministic for a seed, pure Python, about 3 µs a request. What is drawn (each choice is
an assumption, listed in docs/cost-budget.md):

- **Stores**: `stores` of them; traffic Zipf(`store_zipf`) by store rank; a catalog of 20 to
  3,000 products (log-uniform), in 1 to 40 categories (product type), product sizes Zipf; 15%
  of stores have a single product type for everything (as many real exports do). Product
  popularity is Zipf(1.1) over a random order (not catalog order).
- **Shoppers**: a Zipf(0.9) pool per store; the shopper decides the segment (the top 1% `vip`,
  the next 29% `returning`, the rest `new`; 10% of stores also send `wholesale`, 5% send no
  segment) and the locale (the store's primary for 85%, else one of its other published ones).
- **Sessions**: start on a daily curve (peak at 20:00, trough at 08:00, ratio 3:1); 40%
  bounce after one page, the rest view 2 + Geometric(mean 4.5) pages, 40 s apart on average.
  A session has one device (a user agent) and one landing referrer (a URL), which the
  storefront sends with each of its requests. A page is a product page with p 0.5 (landing)
  or 0.65; the product is from the session's focus category with p 0.75 (the focus moves with
  p 0.1 a product page), else from the whole store, both by popularity. A product page puts
  the product in the cart with p 0.08.
- **Requests**: one personalization request per page, with `viewed` (distinct, most recent
  first, at most 20) and `carted`.
- **Catalog edits** (`catalog_edits`): a rate a day per store at uniform times, of a uniform product;
  60% change the price, 20% the title or tags, 20% only the description or images.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DAY_S = 86_400
SEGMENTED = ("vip", "returning", "new")
LOCALES = {  # a store's primary locale (raw, as Shopify's `request.locale.iso_code` spells it): weight
    "en": 40, "en-US": 14, "en-GB": 8, "de": 8, "fr": 7, "es": 6, "it": 3, "nl": 3, "pt-BR": 3,
    "ja": 2, "sv": 2, "da": 1, "pl": 1, "en-AU": 2,
}  # fmt: skip
USER_AGENTS = (  # weight, user agent
    (30, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"),
    (8, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"),
    (18, "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"),
    (6, "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 Chrome/125.0 Mobile Safari/537.36"),
    (4, "Instagram 312.0.0.32.112 (iPhone14,5; iOS 17_5; en_US) AppleWebKit/605.1.15"),
    (16, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
    (9, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.5 Safari"),
    (2, "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"),
    (1, "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
    (3, "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"),
    (1, "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
    (1, "okhttp/4.12.0"),
    (1, ""),
)
REFERRERS = (  # weight, landing referrer (None: typed in / bookmark)
    (33, None),
    (16, "https://www.google.com/"),
    (3, "https://www.google.com/search?q=insulated+tumbler"),
    (2, "https://www.bing.com/"),
    (1, "https://duckduckgo.com/"),
    (8, "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop"),
    (6, "https://www.instagram.com/"),
    (4, "https://www.tiktok.com/"),
    (2, "https://www.pinterest.com/"),
    (1, "https://www.reddit.com/r/BuyItForLife/"),
    (1, "https://t.co/abc123"),
    (4, "https://www.google.com/aclk?sa=l&gclid=EAIaIQobChMI"),
    (3, "https://shop.example/?utm_source=google&utm_medium=cpc"),
    (2, "https://shop.example/?utm_source=meta&utm_medium=paid"),
    (4, "https://mail.google.com/"),
    (3, "https://ctrk.klaviyo.com/ls/click?upn=x"),
    (2, "https://shop.example/?utm_source=newsletter&utm_medium=email"),
    (3, "https://www.blog-about-gear.example/best-tumblers"),
    (2, "https://www.youtube.com/"),
)
CATEGORY_WORDS = (
    "tumblers", "bottles", "mugs", "t-shirts", "hoodies", "jackets", "jeans", "dresses", "shoes",
    "sneakers", "boots", "socks", "hats", "bags", "backpacks", "wallets", "belts", "watches", "rings",
    "necklaces", "earrings", "candles", "soap", "skincare", "makeup", "perfume", "lamps", "rugs",
    "pillows", "blankets", "plates", "knives", "coffee", "tea", "snacks", "supplements", "toys",
    "puzzles", "books", "posters", "stickers", "phone cases", "chargers", "headphones", "speakers",
    "cables", "pet food", "leashes", "planters", "seeds", "tools", "gloves", "swimwear", "sunglasses",
    "gift cards", "bundles", "accessories", "sale",
)  # fmt: skip
VIEWED_MAX = 20
EDIT_KINDS = ("price", "title", "description")
EDIT_WEIGHTS = (0.6, 0.2, 0.2)
# What each kind of edit changes: the personalizer's candidate row, the product copy's input.
EDIT_CHANGES_ROW = {"price": True, "title": True, "description": False}
EDIT_CHANGES_COPY = {"price": False, "title": True, "description": True}


@dataclass(frozen=True)
class Day:
    """The day's shape; the defaults are the seed's scale."""

    requests: int = 1_000_000
    stores: int = 200
    store_zipf: float = 1.0
    seed: int = 17


@dataclass
class Store:
    """One store: its catalog (ids, categories, rows for `Candidate`) and who shops there."""

    slug: str
    product_ids: list[str]
    product_category: list[int]  # index into `categories`, per product in catalog order
    categories: list[str]
    locales: list[str]
    segments: tuple[str, ...]
    pool: int  # shoppers
    popular: Callable[[float], int] = field(repr=False)  # uniform -> product index
    in_category: list[Callable[[float], int]] = field(repr=False)  # per category: uniform -> product

    def rows(self) -> list[dict[str, Any]]:
        """The catalog snapshot rows (what `Candidate` reads)."""
        return [
            {"id": pid, "title": f"{self.categories[c].title()} no. {i}", "product_type": self.categories[c],
             "price": f"{9 + (i * 7) % 90}.00", "tags": ["new"] if i % 5 == 0 else []}
            for i, (pid, c) in enumerate(zip(self.product_ids, self.product_category, strict=True))
        ]  # fmt: skip


@dataclass
class Edit:
    """One catalog edit: when (s), which store and product (catalog index), what it changed."""

    t: float
    store: int
    product: int
    kind: str


@dataclass
class Traffic:
    """The day's requests in time order, in parallel lists, and what each id stands for."""

    day: Day
    stores: list[Store]
    times: list[float]
    store_of: list[int]
    header_of: list[int]  # -> headers[i]: (segment, locale, user agent, referrer), raw
    # -> browses[i]: (store, viewed ids, carted ids) of the first request with the same store,
    # category counts over viewed + carted, and empty or not cart: all `cohort_of` reads of them.
    browse_of: list[int]
    headers: list[tuple[str | None, str | None, str, str | None]]
    browses: list[tuple[int, tuple[str, ...], tuple[str, ...]]]
    # Each request's own (viewed, carted), kept only when asked (tests).
    lists: list[tuple[tuple[str, ...], tuple[str, ...]]] | None = None

    def __len__(self) -> int:
        return len(self.times)

    def context(self, i: int) -> dict[str, Any]:
        """Request `i`'s `context` payload (its own lists if kept, else its browse's first)."""
        segment, locale, device, referrer = self.headers[self.header_of[i]]
        viewed, carted = self.lists[i] if self.lists is not None else self.browses[self.browse_of[i]][1:]
        return {"segment": segment, "locale": locale, "device": device, "referrer": referrer,
                "viewed": list(viewed), "carted": list(carted)}  # fmt: skip


def _sampler(weights: list[float]) -> Callable[[float], int]:
    """u in [0, 1) -> an index drawn with `weights`."""
    cum = list(itertools.accumulate(weights))
    total = cum[-1]
    cum[-1] = math.inf  # u * total rounding up to total still lands on the last index
    return lambda u: bisect.bisect_right(cum, u * total)


def _pick_from(group: list[int], pick: Callable[[float], int]) -> Callable[[float], int]:
    return (lambda u: group[pick(u)]) if group else (lambda u: -1)


def _zipf(n: int, s: float) -> list[float]:
    return [1.0 / (k**s) for k in range(1, n + 1)]


def _stores(day: Day, rng: random.Random) -> list[Store]:
    sessions = day.requests / 3.6
    shares = _zipf(day.stores, day.store_zipf)
    total = sum(shares)
    primary = _sampler(list(LOCALES.values()))
    names = list(LOCALES)
    out = []
    for s in range(day.stores):
        size = round(math.exp(rng.uniform(math.log(20), math.log(3000))))
        if rng.random() < 0.15:
            categories = ["normal"]
        else:
            count = max(3, min(40, round(1.2 * math.sqrt(size))))
            categories = rng.sample(CATEGORY_WORDS, min(count, len(CATEGORY_WORDS)))
        by_size = _sampler(_zipf(len(categories), 1.0))
        product_category = [by_size(rng.random()) for _ in range(size)]
        order = list(range(size))
        rng.shuffle(order)  # popularity rank is not catalog order
        weight = [0.0] * size
        for rank, index in enumerate(order, 1):
            weight[index] = 1.0 / rank**1.1
        members: list[list[int]] = [[] for _ in categories]
        for index, c in enumerate(product_category):
            members[c].append(index)
        in_category: list[Callable[[float], int]] = []
        for group in members:
            pick = _sampler([weight[i] for i in group] or [1.0])
            in_category.append(_pick_from(group, pick))
        locales = [names[primary(rng.random())]]
        extra = rng.choices((0, 1, 2), weights=(60, 25, 15))[0]
        locales += [x for x in rng.sample(names, 3) if x not in locales][:extra]
        roll = rng.random()
        segments = () if roll < 0.05 else (*SEGMENTED, "wholesale") if roll < 0.15 else SEGMENTED
        out.append(
            Store(
                slug=f"store-{s:04d}",
                product_ids=[str(10_000_000 * (s + 1) + i) for i in range(size)],
                product_category=product_category,
                categories=categories,
                locales=locales,
                segments=segments,
                pool=max(20, round(sessions * shares[s] / total * 0.6)),
                popular=_sampler(weight),
                in_category=in_category,
            )
        )
    return out


def _session_start(rng: random.Random) -> float:
    while True:  # rejection sampling of 1 + 0.5 cos(2π (t - 20 h) / 24 h)
        t = rng.random() * DAY_S
        if rng.random() * 1.5 < 1 + 0.5 * math.cos(2 * math.pi * (t / DAY_S - 20 / 24)):
            return t


def catalog_edits(traffic: Traffic, per_store: float) -> list[Edit]:
    """`per_store` edits a day per store on average (Poisson), in time order; the same edits
    for the same seed whatever else varies."""
    rng = random.Random(traffic.day.seed + 1)
    out = []
    for s, store in enumerate(traffic.stores):
        n = _poisson(rng, per_store)
        for _ in range(n):
            kind = rng.choices(EDIT_KINDS, weights=EDIT_WEIGHTS)[0]
            out.append(Edit(rng.random() * DAY_S, s, rng.randrange(len(store.product_ids)), kind))
    out.sort(key=lambda e: e.t)
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def generate(day: Day, progress: Callable[[int], None] | None = None, *, keep_lists: bool = False) -> Traffic:
    """The day's requests, `day.requests` of them, sorted by time (`keep_lists`: each one's own
    viewed and carted ids too)."""
    rng = random.Random(day.seed)
    stores = _stores(day, rng)
    pick_store = _sampler(_zipf(day.stores, day.store_zipf))
    pick_agent = _sampler([w for w, _ in USER_AGENTS])
    pick_referrer = _sampler([w for w, _ in REFERRERS])
    shopper_zipf: dict[int, Callable[[float], int]] = {}
    times: list[float] = []
    store_of: list[int] = []
    header_of: list[int] = []
    browse_of: list[int] = []
    header_ids: dict[Any, int] = {}
    browse_ids: dict[Any, int] = {}
    browses: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
    lists: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    rand, expo = rng.random, rng.expovariate
    n = day.requests
    tick = 0
    while len(times) < n:
        s = pick_store(rand())
        store = stores[s]
        who = shopper_zipf.get(s)
        if who is None:
            who = shopper_zipf[s] = _sampler(_zipf(store.pool, 0.9))
        shopper = who(rand())
        share = shopper / store.pool
        if not store.segments:
            segment = None
        elif "wholesale" in store.segments and (shopper * 7919) % 100 < 3:
            segment = "wholesale"
        else:
            segment = "vip" if share < 0.01 else "returning" if share < 0.3 else "new"
        mixed = (shopper * 2_654_435_761) % 1000 / 1000
        if len(store.locales) > 1 and mixed >= 0.85:
            locale = store.locales[1 + int((mixed - 0.85) / 0.15 * (len(store.locales) - 1))]
        else:
            locale = store.locales[0]
        header = (segment, locale, USER_AGENTS[pick_agent(rand())][1], REFERRERS[pick_referrer(rand())][1])
        h = header_ids.setdefault(header, len(header_ids))
        pages = 1 if rand() < 0.4 else 2 + int(math.log(1 - rand()) / math.log(1 - 1 / 4.5))
        t = _session_start(rng)
        focus = store.product_category[store.popular(rand())]
        viewed: list[int] = []  # catalog indexes, most recent first
        carted: list[int] = []
        counts: dict[int, int] = {}  # category -> count over viewed + carted, as `cohort_of` counts
        b = -1
        for page in range(pages):
            if t >= DAY_S or len(times) >= n:
                break
            if rand() < (0.5 if page == 0 else 0.65):
                if rand() < 0.1:
                    focus = store.product_category[store.popular(rand())]
                p = store.in_category[focus](rand()) if rand() < 0.75 else store.popular(rand())
                if p in viewed:
                    viewed.remove(p)
                    viewed.insert(0, p)
                else:
                    viewed.insert(0, p)
                    c = store.product_category[p]
                    counts[c] = counts.get(c, 0) + 1
                    if len(viewed) > VIEWED_MAX:
                        c = store.product_category[viewed.pop()]
                        counts[c] -= 1
                    b = -1
            if b < 0:
                signature = (s, tuple(sorted((c, k) for c, k in counts.items() if k)), bool(carted))
                b = browse_ids.get(signature, -1)
                if b < 0:
                    b = browse_ids[signature] = len(browses)
                    ids = store.product_ids
                    browses.append((s, tuple(ids[i] for i in viewed), tuple(ids[i] for i in carted)))
            times.append(t)
            store_of.append(s)
            header_of.append(h)
            browse_of.append(b)
            if keep_lists:
                ids = store.product_ids
                lists.append((tuple(ids[i] for i in viewed), tuple(ids[i] for i in carted)))
            if viewed and viewed[0] not in carted and rand() < 0.08:
                carted.insert(0, viewed[0])
                c = store.product_category[viewed[0]]
                counts[c] = counts.get(c, 0) + 1
                b = -1
            t += expo(1 / 40)
        if progress is not None and len(times) >= tick:
            progress(len(times))
            tick += 20_000
    order = sorted(range(len(times)), key=times.__getitem__)
    headers: list[Any] = [None] * len(header_ids)
    for header, h in header_ids.items():
        headers[h] = header
    return Traffic(
        day=day,
        stores=stores,
        times=[times[i] for i in order],
        store_of=[store_of[i] for i in order],
        header_of=[header_of[i] for i in order],
        browse_of=[browse_of[i] for i in order],
        headers=headers,
        browses=browses,
        lists=[lists[i] for i in order] if keep_lists else None,
    )
