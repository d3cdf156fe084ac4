"""`python -m devgateway`: serve the dev gateway."""

from __future__ import annotations

import argparse
import logging
import sys

from devgateway.server import serve


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m devgateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every answer")
    parser.add_argument("--hostile", action="store_true", help="answer with XSS / injection payloads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    serve(host=args.host, port=args.port, latency_ms=args.latency_ms, hostile=args.hostile)


if __name__ == "__main__":
    main()
