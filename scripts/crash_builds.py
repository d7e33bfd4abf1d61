"""Crash-test index builds: SIGKILL `rag-server build` at random moments and check what is served.

One good build of the corpus is made into a temporary index root. Then, per trial, the CLI build
is started as a subprocess and killed with SIGKILL after a seeded random delay spread over the
build's measured duration (process start to exit). After each kill:

* ``CURRENT`` must name a build that ``IndexBuild.load()`` accepts (checksums verified);
* the served build must be the previous one, or a complete new one (never a partial one);
* any new build directory the killed process left must itself load (renamed only when complete);
* one normal build must then succeed and leave no ``.tmp-`` debris (``IndexCatalog.debris()``).

Usage:
    .venv/bin/python scripts/crash_builds.py                      # 20 trials, keyword,bm25
    .venv/bin/python scripts/crash_builds.py --trials 50 --seed 7 --corpus corpus
    .venv/bin/python scripts/crash_builds.py --indexes keyword,bm25,dense   # loads the model

Exit status 1 if any trial fails a check.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag_server.catalog import IndexCatalog
from rag_server.errors import RagServerError
from rag_server.loader import IndexBuild

from _support import FIXTURE_CORPUS, ROOT


def build_command(corpus: Path, root: Path, indexes: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rag_server.cli",
        "build",
        "--corpus",
        str(corpus),
        "--out",
        str(root),
        "--quiet",
        "--indexes",
        indexes,
    ]


def run_build(corpus: Path, root: Path, indexes: str, timeout: float = 600) -> float:
    """One normal CLI build; returns its wall time. RuntimeError if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        build_command(corpus, root, indexes), cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"build failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def stray_pointers(root: Path) -> list[Path]:
    """Temporary CURRENT files (``CURRENT..tmp-<pid>``) left by a kill inside ``switch()``;
    ``IndexCatalog.debris()`` does not look for these, so they are reported separately."""
    return sorted(root.glob("CURRENT.*"))


def measure_build(corpus: Path, root: Path, indexes: str) -> tuple[float, float, float]:
    """One normal CLI build, watched: seconds from process start until it took the build lock
    (imports and argument parsing come first), until it released it, and until it exited."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        build_command(corpus, root, indexes), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    locked_at = unlocked_at = None
    while proc.poll() is None:
        held = holds_lock(proc.pid, root)
        if locked_at is None and held:
            locked_at = time.perf_counter() - start
        elif locked_at is not None and unlocked_at is None and not held:
            unlocked_at = time.perf_counter() - start
        time.sleep(0.0005)
    end = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"build failed (exit {proc.returncode}): {(proc.stderr.read() if proc.stderr else '')[-500:]}"
        )
    locked_at = locked_at if locked_at is not None else 0.0
    return locked_at, (unlocked_at if unlocked_at is not None else end), end


def holds_lock(pid: int, root: Path) -> bool:
    """Whether ``pid`` holds the build lock of ``root`` right now (from /proc/locks)."""
    try:
        inode = (root / ".lock").stat().st_ino
        text = Path("/proc/locks").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        fields = line.split()
        if (
            len(fields) >= 6
            and fields[1] == "FLOCK"
            and fields[4] == str(pid)
            and fields[5].rsplit(":", 1)[-1] == str(inode)
        ):
            return True
    return False


@dataclass
class Trial:
    number: int
    delay: float
    killed: bool  # False: the build had finished before the kill was due
    locked: bool  # the build held the index lock when the kill was sent
    outcome: str  # state the kill left: no-trace, partial, unpublished, switched, finished
    served_ok: bool
    next_ok: bool
    debris_left: int
    stray_pointers: int
    detail: str = ""

    @property
    def mid_build(self) -> bool:
        return self.killed and (self.locked or self.outcome in ("partial", "unpublished"))

    @property
    def ok(self) -> bool:
        return self.served_ok and self.next_ok and self.debris_left == 0

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        when = "killed" if self.killed else "exited"
        return (
            f"trial {self.number:>3}  {status}  delay={self.delay:6.3f}s  {when:<6}  "
            f"lock_held={'yes' if self.locked else 'no ':<3}  after_kill={self.outcome:<11}  "
            f"served={'intact' if self.served_ok else 'BROKEN'}  next_build={'ok' if self.next_ok else 'FAILED'}  "
            f"debris={self.debris_left}  stray_CURRENT_tmp={self.stray_pointers}"
            + (f"  ({self.detail})" if self.detail else "")
        )


def kill_after(command: Sequence[str], delay: float, root: Path, from_lock: bool) -> tuple[bool, bool, int]:
    """Start ``command``; SIGKILL it ``delay`` seconds after it took the build lock (``from_lock``)
    or after it started, unless it exits first. Returns (killed, held_lock_at_kill, returncode)."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if from_lock:
        while proc.poll() is None and not holds_lock(proc.pid, root):
            time.sleep(0.0005)
    deadline = time.perf_counter() + delay
    while proc.poll() is None and time.perf_counter() < deadline:
        time.sleep(min(0.001, max(0.0, deadline - time.perf_counter())))
    if proc.poll() is not None:
        return False, False, proc.returncode
    locked = holds_lock(proc.pid, root)
    proc.send_signal(signal.SIGKILL)
    return True, locked, proc.wait(timeout=60)


def check_after_kill(root: Path, previous: str, before: set[str]) -> tuple[bool, str, str]:
    """Served build intact? Returns (ok, outcome, detail)."""
    catalog = IndexCatalog(root)
    current = catalog.current_id()
    new_ids = [b for b in catalog.build_ids() if b not in before]
    problems = []
    if current != previous and current not in new_ids:
        problems.append(f"CURRENT names {current!r}: neither the previous build nor a new one")
    try:
        served = IndexBuild.load(root)
        if served.build_id != current:
            problems.append(f"served manifest says {served.build_id}, CURRENT says {current}")
    except RagServerError as exc:
        problems.append(f"served build does not load: {exc}")
    for build_id in new_ids:  # a renamed build must be complete, switched in or not
        try:
            IndexBuild.load(catalog.builds_dir / build_id)
        except RagServerError as exc:
            problems.append(f"new build {build_id} is incomplete: {exc}")
    if current != previous:
        outcome = "switched"
    elif new_ids:
        outcome = "unpublished"
    elif catalog.debris():
        outcome = "partial"
    else:
        outcome = "no-trace"
    return not problems, outcome, "; ".join(problems)


def check_next_build(root: Path, next_build: Callable[[], None]) -> tuple[bool, int, str]:
    """Run one normal build; it must succeed, be served, and leave no debris."""
    catalog = IndexCatalog(root)
    before = catalog.current_id()
    try:
        next_build()
    except Exception as exc:  # report, do not crash the whole run
        return False, len(catalog.debris()), f"next build failed: {exc}"
    problems = []
    current = catalog.current_id()
    if current == before:
        problems.append("the next build did not switch CURRENT")
    try:
        IndexBuild.load(root)
    except RagServerError as exc:
        problems.append(f"next build does not load: {exc}")
    debris = catalog.debris()
    if debris:
        problems.append("debris: " + ", ".join(p.name for p in debris))
    return not problems, len(debris), "; ".join(problems)


def run_trial(
    number: int,
    delay: float,
    root: Path,
    command: Sequence[str],
    next_build: Callable[[], None],
    from_lock: bool = True,
) -> Trial:
    catalog = IndexCatalog(root)
    previous = catalog.current_id()
    assert previous is not None, "a trial needs a served build to start from"
    before = set(catalog.build_ids())
    killed, locked, rc = kill_after(command, delay, root, from_lock)
    if not killed and rc != 0:
        return Trial(number, delay, False, False, "failed", False, False, 0, 0, f"build exited {rc} on its own")
    served_ok, outcome, detail = check_after_kill(root, previous, before)
    if not killed:
        outcome = "finished"
    stray = len(stray_pointers(root))
    next_ok, debris_left, next_detail = check_next_build(root, next_build)
    detail = "; ".join(d for d in (detail, next_detail) if d)
    return Trial(number, delay, killed, locked, outcome, served_ok, next_ok, debris_left, stray, detail)


def summary(trials: Sequence[Trial]) -> str:
    rows = [
        ("trials", len(trials)),
        ("kills sent (build still running)", sum(t.killed for t in trials)),
        ("kills that landed mid-build", sum(t.mid_build for t in trials)),
        ("served build intact", sum(t.served_ok for t in trials)),
        ("next build ok", sum(t.next_ok for t in trials)),
        ("debris left after next build", sum(t.debris_left for t in trials)),
        ("stray CURRENT tmp files at end (reported only)", trials[-1].stray_pointers if trials else 0),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'metric':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name:<{width}} | {value:>5} |" for name, value in rows]
    outcomes = Counter(t.outcome for t in trials)
    lines.append("state left by the kill: " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=FIXTURE_CORPUS)
    parser.add_argument("--indexes", default="keyword,bm25", help="keyword,bm25 (default) or keyword,bm25,dense")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--window",
        choices=["build", "process"],
        default="build",
        help="spread kills over the build itself (counted from when it takes the build lock; default) "
        "or over the whole process (most kills then land during Python start-up)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary index root")
    args = parser.parse_args(argv)

    corpus = args.corpus.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="crash-builds-"))
    root = tmp / "indexes"
    command = build_command(corpus, root, args.indexes)
    print(f"corpus {corpus}  indexes {args.indexes}  index root {root}  seed {args.seed}")
    # The good build, then two more, each timed: process start -> lock taken -> lock released -> exit.
    timings = [measure_build(corpus, root, args.indexes) for _ in range(3)]
    locked_at, unlocked_at, duration = (statistics.median(t[i] for t in timings) for i in range(3))
    from_lock = args.window == "build"
    span = unlocked_at - locked_at if from_lock else duration
    print(
        f"good build {IndexCatalog(root).current_id()}; build process {duration:.3f}s, build lock held from "
        f"{locked_at:.3f}s to {unlocked_at:.3f}s (medians of 3)"
    )
    print(
        f"kill delays uniform in [0, {span:.3f}]s counted from "
        + ("the moment the build takes the lock (build window)" if from_lock else "process start (process window)")
    )

    def next_build() -> None:
        run_build(corpus, root, args.indexes)

    rng = random.Random(args.seed)
    trials = []
    for number in range(1, args.trials + 1):
        delay = rng.uniform(0.0, span)
        trial = run_trial(number, delay, root, command, next_build, from_lock)
        trials.append(trial)
        print(trial.line(), flush=True)
    print()
    print(summary(trials))
    failed = [t for t in trials if not t.ok]
    print(f"\nresult: {'FAIL' if failed else 'PASS'} ({len(failed)} failed trial(s))")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
