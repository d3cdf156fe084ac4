"""XSS and prompt injection in product data, briefs and shopper context, and from a hostile model.

The corpus (`tests/faults/corpus/`) goes into every text field of real products, theme briefs
and personalization contexts, while the dev gateway answers with the same corpus in every text
field of every answer. Every object the run published is scanned (`tests/faults/scan.py`).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.faults.env import FaultEnv, sample_products
from tests.faults.report import hostile
from tests.faults.scan import corpus, findings

FIELDS = ("title", "body_html", "vendor", "product_type", "tags", "variant", "option", "image_alt")
PER_PRODUCT = 3
# Refusals that say why: the output was invalid after repair, or the last gate refused to publish.
CLEAR_FAILURES = ("InvalidOutput: ", "InvalidInput: ", "PermanentError: refusing to publish")


def hostile_products(payloads: list[str], tag: str) -> list[tuple[str, dict[str, Any]]]:
    """Real products with `PER_PRODUCT` payloads each, rotating through every text field."""
    bases = [(s, p) for s in ("stanley1913", "electricshop", "kiids-kingdom") for p in sample_products(s)[:8]]
    out = []
    for n in range(0, len(payloads), PER_PRODUCT):
        store, base = bases[(n // PER_PRODUCT) % len(bases)]
        product = copy.deepcopy(base)
        product["id"] = f"{base['id']}{tag}{n}"
        product["title"] = f"{base.get('title', '')} ({tag})"  # no answer cached by the other phase fits
        for i, payload in enumerate(payloads[n : n + PER_PRODUCT]):
            field = FIELDS[(n + i) % len(FIELDS)]
            if field == "tags":
                tags = product.get("tags") or []
                product["tags"] = [*tags, payload] if isinstance(tags, list) else f"{tags}, {payload}"
            elif field == "variant" and product.get("variants"):
                product["variants"][0]["title"] = payload
            elif field == "option" and product.get("options"):
                product["options"][0]["values"] = [payload, *product["options"][0].get("values", [])]
            elif field == "image_alt" and product.get("images"):
                product["images"][0]["alt"] = payload
            else:
                product[field if field in ("title", "body_html", "vendor", "product_type") else "title"] = (
                    f"{product.get('title', '')} {payload}" if field not in ("body_html",) else payload
                )
        out.append((store, product))
    return out


def submit_all(env: FaultEnv, payloads: list[str], tag: str) -> list[str]:
    """Product copy, theme builds and personalization, every input carrying the corpus."""
    from pipelines.submit import submit_personalize, submit_theme_build
    from pipelines.theme_build import save_catalog

    products = hostile_products(payloads, tag)
    jobs = [env.submit_copy(store, product) for store, product in products]
    for i, store in enumerate(("stanley1913", "electricshop")):
        catalog = [p for s, p in products if s == store][:10]
        save_catalog(env.reader, store, {"products": catalog})
        brief = {
            "description": payloads[i * 7],
            "tone": payloads[i * 7 + 1][:60],
            "audience": payloads[-1 - i],
        }
        jobs.append(submit_theme_build(env.broker, env.status, store, brief))  # type: ignore[arg-type]
    for i in range(4):
        candidates = [
            {
                "id": f"c{i}{j}",
                "title": f"{tag} {payloads[(i * 4 + j) % len(payloads)]}",
                "product_type": payloads[-j - 1][:255],
                "price": "9.99",
                "tags": [payloads[j]],
            }
            for j in range(4)
        ]
        context = {
            "segment": "outdoor",
            "device": payloads[i + 20][:500],
            "referrer": payloads[i + 10][:2000],
            "candidates": candidates,
        }
        shopper = f"shopper-{tag}-{i}"
        jobs.append(submit_personalize(env.broker, env.status, "kiids-kingdom", shopper, context))  # type: ignore[arg-type]
    return jobs


def test_no_script_reaches_a_published_file(env: FaultEnv) -> None:
    tally = hostile(
        "XSS + prompt-injection corpus, end to end",
        "the corpus in every text field of products, theme briefs and shopper context, answered by "
        "a model that echoes its input, then by one answering the corpus in every field; every "
        "published file scanned",
    )
    payloads = corpus("xss") + corpus("injection")
    jobs: list[str] = []
    outcomes = []
    # Given inputs carrying the corpus, and a gateway whose answers draw on the prompt's own words
    for tag, hostile_model in (("echo", False), ("hostile", True)):
        # (then a gateway answering the corpus itself in every text field)
        env.gateway.config(hostile=hostile_model, payloads=payloads)
        # When every pipeline runs on them
        phase = submit_all(env, payloads, tag)
        outcomes.append(env.wait_terminal(phase, timeout_s=120))
        jobs += phase
    # Then every file the run published is inert, and inside its store's prefixes
    objects = {k: v for k, v in env.objects().items() if not k.endswith("/catalog.json")}
    unsafe = [f for key, body in objects.items() for f in findings(key, body)]
    stores = ("stanley1913", "electricshop", "kiids-kingdom")
    prefixes = tuple(f"{p}/{s}/" for s in stores for p in ("stores", "themes"))
    outside = [k for k in objects if not k.startswith(prefixes)]
    lost = [j for o in outcomes for j in o.lost]
    failed = {j: str(o.infos[j].get("error")) for o in outcomes for j in o.failed}
    completed = [j for o in outcomes for j in o.completed]
    unclear = {j: e for j, e in failed.items() if not e.startswith(CLEAR_FAILURES)}
    stats = env.gateway.stats()
    tally.cases += 2 * len(payloads) + len(jobs) + stats["model_calls"]
    tally.crashes += len(lost) + len(unclear)
    tally.unsafe += len(unsafe) + len(outside)
    tally.notes = {
        "corpus payloads": len(payloads),
        "jobs": len(jobs),
        "published": len(completed),
        "refused with a reason": len(failed),
        "model answers": stats["model_calls"],
        "files scanned": len(objects),
    }
    assert not unsafe, unsafe[:10]
    assert not outside, outside
    assert not lost, lost
    assert not unclear, unclear
    assert len(completed) >= len(jobs) // 3, "too little was published for the scan to prove much"
