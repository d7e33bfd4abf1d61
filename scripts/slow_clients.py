"""Normal requests while idle and slow clients hold connections open (issue #14, case 4).

    .venv/bin/python scripts/slow_clients.py                      # the served stack (make run)
    .venv/bin/python scripts/slow_clients.py --server gunicorn    # gunicorn gthread, for comparison

Starts the server on 127.0.0.1 (4 threads) over a build of tests/fixtures/corpus made with the
real embedding model (or ``--index DIR``). For each level in ``--levels`` (default 0,16,100) it
opens that many hostile connections, a third of each kind:

* idle: connects and sends nothing;
* slow headers: sends a request line, then one header byte every ``--trickle`` seconds;
* slow body: sends complete headers announcing a 1,000-byte body, then one body byte every
  ``--trickle`` seconds;

then sends ``--requests`` normal ``POST /v1/search`` (bm25, k 3) from 2 client threads, each
with a ``--timeout`` s client timeout, and prints their latencies (p50, p99, max) and failures
(a timeout or any non-200). Every level is bounded by ``--level-seconds``; everything runs on
loopback only. Exit status 0 when no normal request failed at any level.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _support import ROOT, build_in_temp_root, percentile
from support.devserver import SERVERS, HostileClients, LocalServer

BODY = json.dumps({"query": "consentimento do titular", "strategy": "bm25", "k": 3}).encode()


def one_request(port: int, timeout: float) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", "/v1/search", BODY, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
        ok = response.status == 200
    except OSError:
        ok = False
    return time.perf_counter() - started, ok


def run_level(port: int, slow: int, args: argparse.Namespace) -> dict[str, float]:
    hostile = HostileClients(port, slow, args.trickle).open()
    time.sleep(1.0)  # let the server take the connections in
    deadline = time.monotonic() + args.level_seconds
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def client(share: int) -> None:
        nonlocal failures
        for _ in range(share):
            if time.monotonic() > deadline:
                return
            seconds, ok = one_request(port, args.timeout)
            with lock:
                latencies.append(seconds)
                failures += 0 if ok else 1

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(client, [args.requests // 2, args.requests - args.requests // 2]))
    closed = hostile.close()
    ordered = sorted(latencies) or [float("nan")]
    return {
        "slow": slow,
        "opened": len(hostile.socks),
        "refused": hostile.refused,
        "closed_by_server": closed,
        "sent": len(latencies),
        "failed": failures,
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0])
    parser.add_argument("--index", type=Path, help="an index root (default: build the fixture corpus)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--levels", default="0,16,100")
    parser.add_argument("--requests", type=int, default=200, help="normal requests per level")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout of a normal request (s)")
    parser.add_argument("--trickle", type=float, default=1.0, help="seconds between the slow clients' bytes")
    parser.add_argument("--level-seconds", type=float, default=60.0, help="bound on each level")
    args = parser.parse_args()

    tmp: Path | None = None
    index = args.index
    if index is None:
        tmp, _ = build_in_temp_root("slow-clients-")
        index = tmp / "indexes"
    failed = 0
    try:
        with LocalServer(index, threads=args.threads, server=args.server, cwd=ROOT) as server:
            print(f"{args.server} on {server.base}, {args.threads} threads, serving {server.build_id}")
            print(f"normal requests: {args.requests} per level from 2 threads, client timeout {args.timeout:g} s")
            print("| slow clients | opened | closed by server | requests | failed | p50 ms | p99 ms | max ms |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|")
            for level in (int(x) for x in args.levels.split(",")):
                r = run_level(server.port, level, args)
                failed += int(r["failed"])
                print(
                    f"| {level} | {r['opened']} | {r['closed_by_server']} | {r['sent']} | {r['failed']} "
                    f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |",
                    flush=True,
                )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"result: {'PASS' if failed == 0 else 'FAIL'} ({failed} failed normal requests)")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
