"""Where builds live, which one is served, and how a new one is switched in atomically.

    indexes/
      CURRENT                  the served build id (replaced with os.replace: atomic)
      builds/<build id>/       complete builds; the newest few are kept for rollback
      builds/.tmp-<id>/        a build in progress (debris if its builder crashed)
      cache/                   embedding cache shared by builds
      .lock                    held by the one build allowed to run at a time

A build is written entirely under ``.tmp-<id>``, renamed to ``builds/<id>`` (atomic on one
file system), and only then named in ``CURRENT``. A crash at any point leaves ``CURRENT``
naming the previous, intact build.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BuildError, IndexLoadError

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IndexCatalog:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.builds_dir = self.root / "builds"
        self.cache_dir = self.root / "cache"
        self.pointer = self.root / "CURRENT"

    def current_id(self) -> str | None:
        try:
            value = self.pointer.read_text().strip()
        except FileNotFoundError:
            return None
        return value or None

    def current_path(self) -> Path:
        """Directory of the served build; IndexLoadError if there is none."""
        build_id = self.current_id()
        if build_id is None:
            raise IndexLoadError(self.pointer, "no build has been made yet (run: rag-server build)")
        if "/" in build_id or build_id.startswith("."):
            raise IndexLoadError(self.pointer, f"invalid build id {build_id!r}")
        path = self.builds_dir / build_id
        if not path.is_dir():
            raise IndexLoadError(path, "the build named in CURRENT is missing")
        return path

    def build_ids(self) -> list[str]:
        """Complete builds, oldest first (ids start with a UTC timestamp)."""
        if not self.builds_dir.is_dir():
            return []
        return sorted(p.name for p in self.builds_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def debris(self) -> list[Path]:
        """What interrupted builds leave: partial build directories and unswitched pointers."""
        found = []
        if self.builds_dir.is_dir():
            found += [p for p in self.builds_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
        if self.root.is_dir():
            found += [p for p in self.root.iterdir() if p.name.startswith(f"CURRENT.{TMP_PREFIX}")]
        return sorted(found)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One build at a time per index root (a second fails fast instead of waiting)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BuildError(f"{self.root}: another build is running") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def new_temp_dir(self, build_id: str) -> Path:
        """Called under the lock: removes what crashed builds left, then makes a fresh dir."""
        for stale in self.debris():
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        path = self.builds_dir / f"{TMP_PREFIX}{build_id}"
        path.mkdir(parents=True)
        return path

    def publish(self, temp_dir: Path, build_id: str) -> Path:
        """Move a finished build into place and point CURRENT at it."""
        final = self.builds_dir / build_id
        os.rename(temp_dir, final)
        fsync_dir(self.builds_dir)
        self.switch(build_id)
        return final

    def switch(self, build_id: str) -> None:
        if not (self.builds_dir / build_id).is_dir():
            raise BuildError(f"{self.builds_dir / build_id}: no such build")
        tmp = self.root / f"CURRENT.{TMP_PREFIX}{os.getpid()}"
        with tmp.open("w") as handle:
            handle.write(build_id + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.pointer)
        fsync_dir(self.root)

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` builds; the served one is always kept."""
        current = self.current_id()
        ids = self.build_ids()
        doomed = [b for b in ids[: max(0, len(ids) - keep)] if b != current]
        for build_id in doomed:
            shutil.rmtree(self.builds_dir / build_id, ignore_errors=True)
        return doomed
