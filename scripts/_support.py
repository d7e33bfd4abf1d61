"""What the benchmark and reliability scripts share.

The scripts run from a checkout with the project installed (``make install``; then
``.venv/bin/python scripts/<name>.py``). Python puts ``scripts/`` first on ``sys.path``, so
``import _support`` needs no set-up; importing it puts ``tests/`` there too, whose
``support.devserver`` starts and stops a local server for the scripts as for the tests (it is
test infrastructure, and these scripts are drills run from a checkout, never from an install).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "corpus"

if TYPE_CHECKING:
    from rag_server.build import BuildResult


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly (numpy's default);
    NaN when there are none."""
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


def build_in_temp_root(
    prefix: str, corpus: Path = FIXTURE_CORPUS, **options: Any
) -> tuple[Path, BuildResult]:
    """A build of ``corpus`` (the fixture corpus by default, with the default embedding model) in
    ``<new temporary directory>/indexes``; returns that directory (the caller removes it) and
    the build."""
    from rag_server.build import BuildConfig, build_index

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    return tmp, build_index(BuildConfig([corpus], tmp / "indexes", progress=False, **options))
