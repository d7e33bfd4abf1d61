#!/usr/bin/env python3
"""How long the first dense search takes on a freshly started server.

Starts gunicorn (as bench_server.py does), waits ``--wait`` seconds after /readyz answers, then
times one ``/v1/search`` with the dense strategy: the request that used to load the embedding
model, before the app started loading it in the background.

    .venv/bin/python scripts/first_query.py [--index indexes] [--wait 12]
"""

from __future__ import annotations

import argparse
import time

import _support  # noqa: F401  (puts tests/ on sys.path for support.devserver)
from support.devserver import LocalServer, post_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--index", default="indexes")
    parser.add_argument("--wait", type=float, default=12.0, help="seconds between ready and the first search")
    args = parser.parse_args()
    body = {"query": "prazo para comunicar incidente", "strategy": "dense", "k": 3}
    with LocalServer(args.index) as server:
        time.sleep(args.wait)
        start = time.perf_counter()
        status, _ = post_json(server.base + "/v1/search", body, timeout=120)
        took_ms = (time.perf_counter() - start) * 1000
    if status != 200:
        raise SystemExit(f"first_query: /v1/search answered HTTP {status}")
    print(f"first dense search, {args.wait:g} s after ready: {took_ms:.0f} ms")


if __name__ == "__main__":
    main()
