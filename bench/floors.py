"""Client floors: the same model calls the pipeline makes, with nothing around them.

`python -m bench.floors litellm|aiohttp --base-url URL --count N --concurrency C` renders the
product-copy requests for the first N catalog products (untimed), then sends them to the
gateway from one process and one event loop, C at a time, and prints one JSON line:
`{"client", "count", "errors", "elapsed_s", "rate", "peak_rss_mb"}`.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def litellm_floor(base_url: str, reqs: list[dict[str, Any]], concurrency: int) -> tuple[float, int]:
    from agents._litellm import litellm

    ll = litellm()
    headers = {"cf-aig-metadata": json.dumps({"store": "bench", "pipeline": "floor"})}

    def call(req: dict[str, Any]) -> Any:
        return lambda: ll.acompletion(
            **req,
            api_base=f"{base_url}/openai",
            api_key="gateway-managed",
            extra_headers=headers,
            timeout=60,
            num_retries=0,
            max_retries=0,
        )

    return await _drive([call(r) for r in reqs], concurrency)


async def aiohttp_floor(base_url: str, reqs: list[dict[str, Any]], concurrency: int) -> tuple[float, int]:
    """The pipeline's own transport (agents/openai_http.py), without the pipeline."""
    from agents.openai_http import OpenAIHttp

    http = OpenAIHttp(timeout_s=60)
    url = f"{base_url}/openai"
    headers = {"authorization": "Bearer gateway-managed"}

    def call(req: dict[str, Any]) -> Any:
        body = {**req, "model": req["model"].split("/", 1)[1]}
        return lambda: http.chat(url, body, headers)

    try:
        return await _drive([call(r) for r in reqs], concurrency)
    finally:
        await http.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floors", description=__doc__)
    parser.add_argument("client", choices=["litellm", "aiohttp"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--wait-go", action="store_true", help="print 'ready', wait for a line on stdin")
    args = parser.parse_args(argv)
    reqs = requests(args.count)
    run = litellm_floor if args.client == "litellm" else aiohttp_floor
    elapsed, errors, cpu_s = asyncio.run(_timed(run, args.base_url, reqs, args.concurrency, args.wait_go))
    result = {
        "client": args.client,
        "count": args.count,
        "errors": errors,
        "elapsed_s": elapsed,
        "rate": args.count / elapsed,
        "cpu_s": cpu_s,
        "peak_rss_mb": peak_rss_mb(os.getpid()),
    }
    print(json.dumps(result), flush=True)


async def _timed(run: Any, base_url: str, reqs: list[Any], concurrency: int, wait_go: bool) -> Any:
    # Set-up (imports, the first call) happens before "ready"; only the calls after "go" count.
    await run(base_url, reqs[:1], 1)
    if wait_go:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time()
    elapsed, errors = await run(base_url, reqs, concurrency)
    return elapsed, errors, time.process_time() - cpu


if __name__ == "__main__":
    main()
