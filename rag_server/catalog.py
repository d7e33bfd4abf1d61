"""Where builds live, which one is served, and how a new one is switched in atomically.

    indexes/
      CURRENT                  the served build id (replaced with os.replace: atomic)
      builds/<build id>/       complete builds; the newest few are kept for rollback
      builds/.tmp-<id>/        a build in progress (debris if its builder crashed)
      cache/                   embedding cache shared by builds (cache/*.tmp-<pid>.npy: debris)
      serving/<build id>       lease files: a shared flock held by each process serving the build
      .lock                    held by the one build allowed to run at a time

A build is written entirely under ``.tmp-<id>``, renamed to ``builds/<id>`` (atomic on one
file system), and only then named in ``CURRENT``. A crash at any point leaves ``CURRENT``
naming the previous, intact build.

Pruning keeps the newest ``keep`` builds that verify (a corrupt build does not count), and never
removes the build named in ``CURRENT``, the newest build that verifies, or a build some process
serves: a server holds a shared ``flock`` on ``serving/<build id>`` while it serves that build
(released by the kernel if it dies), and pruning removes a build only while it holds the
exclusive lock on that file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import BuildError, IndexLoadError

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BuildLease:
    """A shared lock on ``serving/<build id>``: while it is held, pruning keeps the build."""

    def __init__(self, build_id: str, handle: IO[bytes]) -> None:
        self.build_id = build_id
        self._handle: IO[bytes] | None = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None


class IndexCatalog:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.builds_dir = self.root / "builds"
        self.cache_dir = self.root / "cache"
        self.leases_dir = self.root / "serving"
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
        """What interrupted builds leave: partial build directories, unswitched pointers and
        embedding-cache files killed while being written (``cache/*.tmp-<pid>.npy``)."""
        found = []
        if self.builds_dir.is_dir():
            found += [p for p in self.builds_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
        if self.root.is_dir():
            found += [p for p in self.root.iterdir() if p.name.startswith(f"CURRENT.{TMP_PREFIX}")]
        if self.cache_dir.is_dir():
            found += [p for p in self.cache_dir.iterdir() if TMP_PREFIX in p.name]
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

    def lease(self, build_id: str) -> BuildLease | None:
        """Take a shared lease on a build before loading it to serve it. IndexLoadError when the
        build is being pruned right now; None (logged) when the index root is read-only, in
        which case nothing is pruned by this process's builds either."""
        try:
            self.leases_dir.mkdir(parents=True, exist_ok=True)
            handle = (self.leases_dir / build_id).open("ab")
        except OSError as exc:
            logging.getLogger("rag_server.catalog").warning(
                "cannot lease the served build", extra={"fields": {"build_id": build_id, "error": str(exc)}}
            )
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise IndexLoadError(self.builds_dir / build_id, "the build is being pruned") from None
        return BuildLease(build_id, handle)

    def prune(self, keep: int, verifies: Callable[[Path], bool] | None = None) -> list[str]:
        """Delete the builds outside the newest ``keep`` that verify (``verifies(build_dir)``;
        every build counts when it is None). Never deleted: the build named in CURRENT, the
        newest build that verifies, any build a process serves (leased). Returns what went."""
        current = self.current_id()
        ids = self.build_ids()
        kept: list[str] = []
        for build_id in reversed(ids):  # newest first; the first one kept is the newest that verifies
            if len(kept) >= keep:
                break
            if verifies is None or verifies(self.builds_dir / build_id):
                kept.append(build_id)
        doomed = [b for b in ids if b not in kept and b != current]
        removed = [b for b in doomed if self._remove_unless_leased(b)]
        self._drop_stale_leases()
        return removed

    def _remove_unless_leased(self, build_id: str) -> bool:
        self.leases_dir.mkdir(parents=True, exist_ok=True)
        lease_file = self.leases_dir / build_id
        with lease_file.open("ab") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a process serves it
            shutil.rmtree(self.builds_dir / build_id, ignore_errors=True)
            lease_file.unlink(missing_ok=True)
        return True

    def _drop_stale_leases(self) -> None:
        """Lease files of builds that no longer exist and that nobody holds."""
        if not self.leases_dir.is_dir():
            return
        for lease_file in self.leases_dir.iterdir():
            if (self.builds_dir / lease_file.name).is_dir():
                continue
            with lease_file.open("ab") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                lease_file.unlink(missing_ok=True)
