"""SIGKILL a build and check what is served (the checks of scripts/crash_builds.py, few and fast).

Two kinds of kill, keyword and BM25 indexes only (no model):
* the CLI build killed at fixed fractions of its measured locked time (where it lands varies
  with the machine; the checks must hold wherever it lands);
* a build paused at a named point (after a stage, before CURRENT is switched, after the CURRENT
  temp file is written) and killed there, so every point is hit deterministically.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag_server.build import BuildConfig, build_index
from rag_server.catalog import IndexCatalog

from support import load_script

INDEXES = ["keyword", "bm25"]


crash = load_script("crash_builds")


def _next_build(corpus: Path, root: Path):  # type: ignore[no-untyped-def]
    def run() -> None:
        build_index(BuildConfig([corpus], root, indexes=INDEXES, progress=False))

    return run


@pytest.fixture
def root(tmp_path: Path, corpus_dir: Path) -> Path:
    root = tmp_path / "indexes"
    build_index(BuildConfig([corpus_dir], root, indexes=INDEXES, progress=False))
    return root


@pytest.mark.slow  # real builds in subprocesses, killed and rerun
def test_cli_build_killed_at_fixed_fractions(root: Path, corpus_dir: Path) -> None:
    locked_at, unlocked_at, _ = crash.measure_build(corpus_dir, root, ",".join(INDEXES))
    span = max(unlocked_at - locked_at, 0.001)
    command = crash.build_command(corpus_dir, root, ",".join(INDEXES))
    for number, fraction in enumerate((0.1, 0.5, 0.9), start=1):
        trial = crash.run_trial(number, fraction * span, root, command, _next_build(corpus_dir, root))
        assert trial.ok, trial.line()


# A build in a subprocess that stops at one point (writes a marker, then sleeps) to be killed there.
_PAUSED_BUILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import rag_server.catalog as catalog
    from rag_server.build import BuildConfig, build_index

    corpus, root, marker, point = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]

    def pause():
        marker.write_text("here")
        time.sleep(60)

    if point == "before-switch":  # builds/<id> renamed into place, CURRENT not yet switched
        original_switch = catalog.IndexCatalog.switch
        def switch(self, build_id):
            pause()
            original_switch(self, build_id)
        catalog.IndexCatalog.switch = switch
    if point == "in-switch":  # CURRENT..tmp-<pid> written, not yet renamed over CURRENT
        original_replace = os.replace
        def replace(src, dst, *args, **kwargs):
            if Path(dst).name == "CURRENT":
                pause()
            return original_replace(src, dst, *args, **kwargs)
        catalog.os.replace = replace

    hook = (lambda stage: pause() if stage == point else None)
    build_index(BuildConfig([corpus], root, indexes=["keyword", "bm25"], progress=False), after_stage=hook)
    """
)


def _kill_at(point: str, corpus: Path, root: Path, tmp_path: Path) -> None:
    marker = tmp_path / f"paused-{point}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_BUILD, str(corpus), str(root), str(marker), point],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert alive and marker.exists(), f"the build never reached {point}: {proc.stderr.read() if proc.stderr else ''}"


# Expected state left by the kill at each point (see crash_builds.check_after_kill).
POINTS = {
    "load": "no-trace",
    "chunk": "no-trace",
    "keyword": "partial",
    "bm25": "partial",
    "write": "partial",  # manifest written and fsynced, not yet renamed
    "before-switch": "unpublished",
}


@pytest.mark.parametrize("point", list(POINTS))
def test_build_killed_at_each_point(point: str, root: Path, corpus_dir: Path, tmp_path: Path) -> None:
    catalog = IndexCatalog(root)
    previous, before = catalog.current_id(), set(catalog.build_ids())
    _kill_at(point, corpus_dir, root, tmp_path)
    served_ok, outcome, detail = crash.check_after_kill(root, previous, before)
    assert served_ok, detail
    assert outcome == POINTS[point]
    assert catalog.current_id() == previous  # nothing was switched in
    next_ok, debris_left, detail = crash.check_next_build(root, _next_build(corpus_dir, root))
    assert next_ok and debris_left == 0, detail
    assert crash.stray_pointers(root) == []


def test_kill_inside_switch_leaves_no_stray_pointer(root: Path, corpus_dir: Path, tmp_path: Path) -> None:
    catalog = IndexCatalog(root)
    previous, before = catalog.current_id(), set(catalog.build_ids())
    _kill_at("in-switch", corpus_dir, root, tmp_path)
    served_ok, outcome, detail = crash.check_after_kill(root, previous, before)
    assert served_ok and outcome == "unpublished", detail  # served build is safe either way
    next_ok, debris_left, detail = crash.check_next_build(root, _next_build(corpus_dir, root))
    assert next_ok and debris_left == 0, detail
    assert crash.stray_pointers(root) == []  # the next build removed the temporary pointer
