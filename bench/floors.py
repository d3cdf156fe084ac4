"""Client floors: the same model calls the pipeline makes, with nothing around them.

`python -m bench.floors litellm|gateway --base-url URL --count N --concurrency C` renders the
product-copy requests for the first N catalog products (untimed), then sends them to the
gateway from one process and one event loop, C at a time, placed on the CPU as the pipeline's
batch worker is (its scheduling policy; off the last CPU only while an interactive worker runs on
the machine), and prints one JSON line per run:
`{"client", "count", "errors", "elapsed_s", "rate", "cpu_s", "peak_rss_mb"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import time
from typing import Any

from bench.catalog import catalog
from bench.env import peak_rss_mb


def requests(count: int) -> list[dict[str, Any]]:
    """The chat requests product copy would send for the first `count` catalog products."""
    from adapters.settings import DEFAULT_PROMPTS_DIR
    from agents.gateway import response_format_for
    from agents.product_copy import ProductCopyAgent
    from agents.prompts import PromptRegistry
    from agents.runtime import AgentRuntime
    from agents.schemas import OUTPUT_MODELS
    from agents.shopify import parse_product

    prompts = PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS)
    prompt = prompts.get("product_copy")
    agent = ProductCopyAgent(AgentRuntime(gateway=None, prompts=prompts))  # type: ignore[arg-type]
    out = []
    for _, product in catalog(count):
        variables = agent.variables(
            parse_product(product),
            brand_voice=None,
            locale=None,
            model=prompt.meta.model,
            token_budget=prompt.meta.input_token_budget,
        )
        out.append(
            {
                "model": prompt.meta.model,
                "messages": prompt.render(variables),
                "response_format": response_format_for(prompt.output_model),
                "temperature": prompt.meta.temperature,
                "max_tokens": prompt.meta.max_tokens,
            }
        )
    return out


async def _drive(calls: list[Any], concurrency: int) -> tuple[float, int]:
    """Run the coroutine factories `calls`, `concurrency` at a time; (elapsed seconds, errors)."""
    queue = list(reversed(calls))
    errors = 0

    async def lane() -> None:
        nonlocal errors
        while queue:
            call = queue.pop()
            try:
                await call()
            except Exception as exc:
                errors += 1
                if errors <= 3:
                    print(f"floor call failed: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started, errors


async def litellm_floor(
    base_url: str, reqs: list[dict[str, Any]], concurrency: int, setting: str | None = None
) -> tuple[float, int]:
    """Plain `litellm.acompletion`: its defaults, or one `setting` of `bench.litellm_settings`."""
    from bench.litellm_settings import configured

    call = functools.partial(
        configured(setting).acompletion,
        api_base=f"{base_url}/openai",
        api_key="gateway-managed",
        extra_headers={"cf-aig-metadata": json.dumps({"store": "bench", "pipeline": "floor"})},
        timeout=60,
        max_retries=0,
    )
    return await _drive([functools.partial(call, **r) for r in reqs], concurrency)


async def gateway_floor(base_url: str, reqs: list[dict[str, Any]], concurrency: int) -> tuple[float, int]:
    """The pipeline's gateway client (litellm with the service's settings), without the pipeline."""
    return await _drive([functools.partial(complete, _gateway(base_url), r) for r in reqs], concurrency)


def complete(client: Any, req: dict[str, Any]) -> Any:
    """One of `requests()` through a `GatewayClient`, as product copy sends it."""
    from agents.schemas.product_copy import ProductCopy
    from agents.usage import CallContext

    return client.complete(
        model=req["model"],
        messages=req["messages"],
        ctx=CallContext(store="bench", pipeline="floor", job_id="floor"),
        prompt_ref="product_copy@floor",
        response_model=ProductCopy,
        temperature=req["temperature"],
        max_tokens=req["max_tokens"],
    )


@functools.cache
def _gateway(base_url: str) -> Any:
    """One client for the warm-up and the timed calls (litellm keeps its HTTP client per loop)."""
    from agents.gateway import GatewayClient, GatewayConfig

    return GatewayClient(GatewayConfig(base_url=base_url))


FLOORS = {"litellm": litellm_floor, "gateway": gateway_floor}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floors", description=__doc__)
    parser.add_argument("client", choices=list(FLOORS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--setting", help="litellm only: a setting of bench.litellm_settings, or 'service'")
    parser.add_argument(
        "--wait-go", action="store_true", help="print 'ready', then one run per 'go' line on stdin"
    )
    args = parser.parse_args(argv)
    run = FLOORS[args.client]
    if args.setting:
        run = functools.partial(litellm_floor, setting=args.setting)
    asyncio.run(_serve(args.client, run, args.base_url, requests(args.count), args.concurrency, args.wait_go))


def place_like_the_batch_worker() -> None:
    """Run where the pipeline's batch worker runs (pipelines/lanes.py: its scheduling policy; every
    CPU, less the last `INTERACTIVE_RESERVED_CPUS` while an interactive worker runs on this machine,
    re-checked as the worker does): a floor measured elsewhere would be another machine, the more so
    under load."""
    from adapters.settings import get_settings
    from pipelines.lanes import BatchLane

    settings = get_settings()
    BatchLane(settings.batch_cpu_policy, settings.interactive_reserved_cpus).start()


async def _serve(
    client: str, run: Any, base_url: str, reqs: list[Any], concurrency: int, wait_go: bool
) -> None:
    # Set-up (imports, the first calls) happens before "ready"; only the calls after "go" count.
    await run(base_url, reqs[:8], 8)
    place_like_the_batch_worker()
    loop = asyncio.get_running_loop()
    if wait_go:
        print("ready", flush=True)
    while not wait_go or (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
        cpu = time.process_time()
        elapsed, errors = await run(base_url, reqs, concurrency)
        result = {
            "client": client,
            "count": len(reqs),
            "errors": errors,
            "elapsed_s": elapsed,
            "rate": len(reqs) / elapsed,
            "cpu_s": time.process_time() - cpu,
            "peak_rss_mb": peak_rss_mb(os.getpid()),
        }
        print(json.dumps(result), flush=True)
        if not wait_go:
            break
    if _gateway.cache_info().currsize:
        await _gateway(base_url).aclose()


if __name__ == "__main__":
    main()
