"""Loading a build for serving: manifest and checksums verified before anything is trusted."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .analysis import Analyzer, AnalyzerSettings
from .catalog import IndexCatalog
from .errors import IndexLoadError
from .indexes import BM25Index, DenseIndex, KeywordIndex
from .manifest import read_manifest, verify_files
from .passage import Passage
from .store import load_passages


@dataclass
class IndexBuild:
    """A verified build in memory: passages plus whichever indexes it holds."""

    backend: ClassVar[str] = "local"  # where its indexes live; rag_server.milvus.MilvusBuild: "milvus"
    path: Path
    manifest: dict[str, Any]
    passages: list[Passage]
    analyzer: Analyzer
    keyword: KeywordIndex | None = None
    bm25: BM25Index | None = None
    dense: DenseIndex | None = None
    _positions: dict[str, int] = field(default_factory=dict, repr=False)
    _field_rows: dict[str, dict[Any, npt.NDArray[np.intp]]] = field(default_factory=dict, repr=False)

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    def holds(self, index: str) -> bool:
        """Whether the build has the index ``index`` ("keyword", "bm25", "dense"): the registry
        and the servable check ask this, not the attributes, so a build whose indexes live in
        another backend answers for itself."""
        return getattr(self, index, None) is not None

    def term_idf(self) -> Callable[[str], float] | None:
        """The idf of a term when the build's term statistics are not in memory (a Milvus
        build's are in Milvus); None here: the pipeline reads them from the BM25 or keyword index."""
        return None

    def position(self, passage_id: str) -> int | None:
        if not self._positions:
            self._positions = {p.id: i for i, p in enumerate(self.passages)}
        return self._positions.get(passage_id)

    def mask(self, predicate: Any) -> npt.NDArray[np.bool_]:
        return np.fromiter((bool(predicate(p)) for p in self.passages), dtype=bool, count=len(self.passages))

    def field_mask(self, name: str, values: Iterable[str]) -> npt.NDArray[np.bool_]:
        """Passages whose field ``name`` equals one of ``values``. The rows of each value of a
        field are listed on the first filter by that field, so later filters cost one array
        write per value instead of a Python call per passage."""
        rows = self._field_rows.get(name)
        if rows is None:
            lists: dict[Any, list[int]] = {}
            for i, p in enumerate(self.passages):
                lists.setdefault(getattr(p, name), []).append(i)
            rows = self._field_rows[name] = {v: np.asarray(r, dtype=np.intp) for v, r in lists.items()}
        mask = np.zeros(len(self.passages), dtype=bool)
        for value in values:
            found = rows.get(value)
            if found is not None:
                mask[found] = True
        return mask

    @classmethod
    def load(cls, location: Path | str) -> IndexBuild:
        """Load the build served from an index root (via CURRENT) or a build directory."""
        location = Path(location)
        build_dir = location if (location / "manifest.json").exists() else IndexCatalog(location).current_path()
        manifest = read_manifest(build_dir)
        verify_files(build_dir, manifest)
        passages = load_passages(build_dir / "passages.jsonl")
        if len(passages) != manifest["passage_count"]:
            raise IndexLoadError(build_dir / "passages.jsonl", "passage count differs from manifest")
        settings = AnalyzerSettings(**manifest["analyzer"])
        build = cls(build_dir, manifest, passages, Analyzer(settings))
        names = manifest["indexes"]
        if "keyword" in names:
            build.keyword = KeywordIndex.load(build_dir / "keyword")
        if "bm25" in names:
            build.bm25 = BM25Index.load(build_dir / "bm25")
        if "dense" in names:
            build.dense = DenseIndex.load(build_dir / "dense")
        for index in (build.keyword, build.bm25, build.dense):
            if index is not None and len(index) != len(passages):
                raise IndexLoadError(build_dir / index.kind, "passage count differs from passages.jsonl")
        return build
