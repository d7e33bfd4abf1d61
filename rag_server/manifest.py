"""A build's manifest: its format version, the checksum of every file, and reading it back.

Both sides of a build use this module: the builder writes the manifest last (so a build
without one is incomplete), and the loader trusts nothing in a build until the manifest reads
and every file it lists has the recorded size and sha256. Serving imports only this side.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import IndexLoadError

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
REQUIRED_KEYS = ("build_id", "format_version", "passage_count", "files", "analyzer", "indexes", "corpus_checksum")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(build_dir: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "bytes"}}`` of every file under ``build_dir``, sorted."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in build_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(build_dir).as_posix()
        files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return files


def write_manifest(build_dir: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` durably: the file and every file of the build reach the disk before
    the build is renamed into view, so a crash never publishes a build with missing data."""
    tmp = build_dir / f"{MANIFEST_NAME}.tmp"
    with tmp.open("w") as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, build_dir / MANIFEST_NAME)
    for path in build_dir.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def read_manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexLoadError(path, "not valid JSON") from None
    if not isinstance(manifest, dict):
        raise IndexLoadError(path, "expected a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise IndexLoadError(path, f"missing keys {missing}")
    if manifest["format_version"] != MANIFEST_VERSION:
        raise IndexLoadError(path, f"format version {manifest['format_version']} is not {MANIFEST_VERSION}")
    if not isinstance(manifest["files"], dict):
        raise IndexLoadError(path, "'files' must be an object")
    return manifest


def verify_files(build_dir: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists exists with its recorded size and sha256."""
    root = build_dir.resolve()
    for rel, meta in manifest["files"].items():
        path = (build_dir / rel).resolve()
        if root not in path.parents:  # a manifest must never point outside its build
            raise IndexLoadError(build_dir / MANIFEST_NAME, f"file entry {rel!r} leaves the build directory")
        if not path.is_file():
            raise IndexLoadError(build_dir / rel, "missing file")
        if path.stat().st_size != meta.get("bytes"):
            raise IndexLoadError(
                build_dir / rel, f"size {path.stat().st_size} differs from manifest ({meta.get('bytes')})"
            )
        if sha256_file(path) != meta.get("sha256"):
            raise IndexLoadError(build_dir / rel, "checksum mismatch")


def verifies(build_dir: Path) -> bool:
    """The build's manifest reads and every file's size and sha256 check out."""
    try:
        verify_files(build_dir, read_manifest(build_dir))
    except IndexLoadError:
        return False
    return True
