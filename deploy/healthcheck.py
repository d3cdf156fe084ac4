"""The image's HEALTHCHECK: the web process's `/healthz`; a worker's metrics endpoint when it serves one.

Standard library only (the slim image has no curl). Exit 0: healthy; 1: not.
"""

import os
import sys
import urllib.request
from pathlib import Path


def main() -> int:
    process = Path("/tmp/wandstore-process")
    name = process.read_text().strip() if process.exists() else "web"
    if name == "web":
        url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    elif os.environ.get("METRICS_PORT"):
        url = f"http://127.0.0.1:{os.environ['METRICS_PORT']}/metrics"
    else:
        return 0  # a worker without a metrics port: the platform watches the process itself
    try:
        with urllib.request.urlopen(url, timeout=4) as reply:
            return 0 if reply.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
