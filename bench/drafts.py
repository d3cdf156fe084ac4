"""What a draft costs a copy job: publishing as before, against a draft first (auto, review, approve).

`python -m bench.drafts [--products N]` starts a private Valkey and a local object store, then
times per product, side by side in one run:

- `publish only`: the old path, `copy.json` written (one object PUT);
- `draft, auto`: the draft's body (PUT, `If-None-Match`), its state and index (one Redis
  script), the live copy read for the diff, the policy (the store record), `copy.json`, the
  move to `live` (one Redis script);
- `draft, review`: the same up to the policy, which holds it;
- `approve`: a reviewer's approval of a waiting draft (read, publish, move).

Milliseconds of wall time per product on one thread, and the ratio to `publish only`. A model
call costs hundreds of milliseconds; this is what the review step adds around it.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def _product(n: int) -> dict[str, Any]:
    return {
        "id": str(9_900_000_000_000 + n),
        "title": f"Classic bottle {n}",
        "body_html": "<p>Keeps drinks cold for a day.</p>" * 4,
        "updated_at": "2025-01-01T00:00:00Z",
        "images": [
            {"id": str(n * 10 + i), "src": "https://cdn.shopify.com/x.jpg", "alt": None} for i in range(3)
        ],
    }


def _copy(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": product["title"],
        "description_html": "<p>A steel bottle that keeps drinks cold for 24 hours.</p>",
        "bullets": ["Steel", "Leakproof", "Dishwasher safe"],
        "seo_title": product["title"],
        "meta_description": "A steel bottle that keeps drinks cold.",
        "image_alts": [{"image_id": i["id"], "alt": "A steel bottle"} for i in product["images"]],
    }


META = {
    "pipeline": "product_copy",
    "input_hash": "sha256:x",
    "cost_usd": "0.0003",
    "prompt_ref": "product_copy@v1",
}


def run(products: int) -> str:
    import redis

    from adapters.logs import configure_logging

    configure_logging("WARNING")  # one line per draft would drown the table

    from adapters.redis_conn import valkey_binary
    from adapters.store import LocalStore
    from adapters.stores import StoreRegistry
    from bench.env import free_port
    from domain.keys import product_copy_key
    from pipelines.drafts_review import approve, propose_copy
    from pipelines.publish import publish

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        # Persistence as a production Redis usually runs it: AOF, fsync once a second.
        argv = [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            objects = LocalStore(Path(tmp) / "objects")
            registry = StoreRegistry(client)
            registry.update("bench-auto", shop_domain="bench-auto.myshopify.com", currency="USD")
            registry.update(
                "bench-review",
                shop_domain="bench-review.myshopify.com",
                currency="USD",
                publish={"copy": "review", "theme": "review"},
            )
            items = [_product(n) for n in range(products)]
            timings: dict[str, float] = {}

            started = time.perf_counter()
            for p in items:
                publish(objects, product_copy_key("bench-plain", p["id"]), _copy(p), META)
            timings["publish only"] = time.perf_counter() - started

            for store, label in (("bench-auto", "draft, auto"), ("bench-review", "draft, review")):
                started = time.perf_counter()
                waiting = []
                for n, p in enumerate(items):
                    ids = [i["id"] for i in p["images"]]
                    done = propose_copy(
                        client,
                        objects,
                        store=store,
                        product=p,
                        body=_copy(p),
                        meta=META,
                        image_ids=ids,
                        job_id=f"{store}-{n}",
                    )
                    waiting.append(done.draft_id)
                timings[label] = time.perf_counter() - started
            started = time.perf_counter()
            for draft_id in waiting:
                approve(client, objects, "bench-review", draft_id, by="bench")
            timings["approve"] = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=10)
    base = timings["publish only"]
    lines = [
        f"{products} products, one thread, a private Valkey and the local object store.",
        "",
        "| path | ms per product | x publish only |",
        "|---|---:|---:|",
    ]
    for label, seconds in timings.items():
        lines.append(f"| {label} | {seconds / products * 1000:.2f} | {seconds / base:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    args = parser.parse_args()
    print(run(args.products), end="")


if __name__ == "__main__":
    main()
