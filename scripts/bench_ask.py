#!/usr/bin/env python3
"""``POST /v1/ask`` latency of two versions of the server, side by side in one run.

Each side is a real gunicorn (``LocalServer`` of ``tests/support/devserver.py``) on 127.0.0.1: "before" runs
the code of another checkout (``--before-tree``, e.g. ``git worktree add /tmp/before 724b733``)
over its own build, "after" this checkout's code over its build. Every question of the answer
set's split is asked of both, the side asked first alternating, so both see the same machine
load; each pass gives a p50 and p95 per side, and the report is the median over ``--repeats``
passes and the ratio after/before. Both sides run under the same HTTP stack (``--server``,
gunicorn by default: the earlier code has no other), so the ratio is the answer path's.

    .venv/bin/python scripts/bench_ask.py --before-tree /tmp/before --before-index /tmp/idx_before \\
        --after-index indexes --split test --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rag_server.evaluation.answers import ANSWER_QUESTIONS, load_answer_questions

from _support import percentile
from support.devserver import LocalServer, post_json


def one_pass(servers: dict[str, LocalServer], questions: list[str], flip: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in servers}
    for i, question in enumerate(questions):
        order = list(servers) if (i % 2 == 0) != flip else list(servers)[::-1]
        for name in order:
            start = time.perf_counter()
            status, _ = post_json(servers[name].base + "/v1/ask", {"question": question})
            elapsed = (time.perf_counter() - start) * 1000
            if status != 200:
                raise SystemExit(f"{name}: /v1/ask answered {status} for {question!r}")
            times[name].append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", required=True, help="checkout of the earlier code")
    parser.add_argument("--before-index", required=True, help="index root built by the earlier code")
    parser.add_argument("--after-index", default="indexes", help="index root built by this code")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--server",
        default="gunicorn",
        help="the HTTP stack of both sides (gunicorn: what the earlier code served with)",
    )
    args = parser.parse_args()

    questions = [q.question for q in load_answer_questions(ANSWER_QUESTIONS, args.split)]
    before_tree = str(Path(args.before_tree).resolve())
    servers = {
        "before": LocalServer(
            args.before_index,
            threads=args.threads,
            cwd=before_tree,
            env={"PYTHONPATH": before_tree},
            server=args.server,
        ),
        "after": LocalServer(args.after_index, threads=args.threads, server=args.server),
    }
    try:
        for server in servers.values():
            server.start()
        one_pass(servers, questions[:5], flip=False)  # warm-up: first calls, caches
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        for repeat in range(args.repeats):
            times = one_pass(servers, questions, flip=bool(repeat % 2))
            for name, values in times.items():
                p50, p95 = percentile(values, 50), percentile(values, 95)
                runs[name].append((p50, p95))
                print(f"pass {repeat + 1} {name:6}: p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({len(values)} questions)")
    finally:
        for server in servers.values():
            if server.proc is not None:
                server.stop()
    medians = {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for name, rs in runs.items()
    }
    for name, (p50, p95) in medians.items():
        print(f"median of {args.repeats} passes, {name:6}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(
        f"ratio after/before: p50 {medians['after'][0] / medians['before'][0]:.2f}×, "
        f"p95 {medians['after'][1] / medians['before'][1]:.2f}×"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
