"""`wandstore-agents gateway`: serve the dev gateway."""

from __future__ import annotations

import typer


def gateway(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8787, help="Port to listen on."),
    latency_ms: int = typer.Option(0, help="Artificial model latency per call, in milliseconds."),
    hostile: bool = typer.Option(False, help="Answer with XSS and prompt-injection payloads in every field."),
) -> None:
    """Serve AI Gateway's OpenAI and Anthropic endpoints offline, deterministically."""
    from devgateway import serve

    typer.echo(f"dev gateway: AI_GATEWAY_URL=http://{host}:{port}/v1/dev/wandstore-ai")
    serve(host=host, port=port, latency_ms=latency_ms, hostile=hostile)
