"""Which builds a server may serve, loaded under a lease.

A build is *servable* when it verifies (:meth:`IndexBuild.load`) and holds the indexes the
default strategy needs (its ``indexes`` in the strategy registry): a build made with
``--indexes keyword,bm25`` loads, but every default question would fail on it. A server loads
a build under a lease (:meth:`IndexCatalog.lease`), so that pruning keeps it while it is served.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import BuildLease, IndexCatalog
from .errors import IndexLoadError
from .loader import IndexBuild
from .retrieval import LOCAL, Strategy


def check_servable(build: IndexBuild, default: Strategy | None = None) -> IndexBuild:
    """``build``, or IndexLoadError when it lacks an index the ``default`` strategy needs (None:
    the local backend's default)."""
    default = default or LOCAL.get(None)
    missing = [name for name in default.indexes if not build.holds(name)]
    if missing:
        built_with = ",".join(str(n) for n in build.manifest.get("indexes", []))
        raise IndexLoadError(
            build.path,
            f"cannot serve the default strategy {default.name!r}: the build has no {' or '.join(missing)} "
            f"index (built with --indexes {built_with})",
        )
    return build


def open_build(
    catalog: IndexCatalog, build_dir: Path, lease: bool, default: Strategy | None = None
) -> tuple[IndexBuild, BuildLease | None]:
    """A servable build and its lease (taken first when ``lease``, released on failure)."""
    held = catalog.lease(build_dir.name) if lease else None
    try:
        return check_servable(IndexBuild.load(build_dir), default), held
    except BaseException:
        if held is not None:
            held.release()
        raise


def open_servable(
    catalog: IndexCatalog, lease: bool, default: Strategy | None = None
) -> tuple[IndexBuild, BuildLease | None, list[str]]:
    """The build named in ``CURRENT`` when it is servable; else the newest build that is, with a
    note saying why ``CURRENT`` was passed over. Raises the error of ``CURRENT`` when no build is
    servable."""
    try:
        return (*open_build(catalog, catalog.current_path(), lease, default), [])
    except IndexLoadError as exc:
        refused = exc
    current = catalog.current_id()
    for build_id in reversed(catalog.build_ids()):
        if build_id == current:
            continue
        try:
            build, held = open_build(catalog, catalog.builds_dir / build_id, lease, default)
        except IndexLoadError:
            continue
        note = f"CURRENT names a build that cannot be served ({refused.public()}); serving {build_id} instead"
        return build, held, [note]
    raise refused
