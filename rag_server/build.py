"""Making a build: corpus → passages → indexes → manifest, switched in atomically.

Stages (each timed in the manifest): load, chunk, analyze, keyword, bm25, embed, dense, write.
Everything is written under a temporary directory; only a complete, checksummed build is
renamed into place and named in ``CURRENT`` (see :mod:`rag_server.catalog`).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import __version__
from .analysis import Analyzer, AnalyzerSettings
from .catalog import IndexCatalog
from .chunking import DEFAULT_MAX_CHARS, chunk_document
from .documents import corpus_checksum, load_corpus
from .embedding import DEFAULT_MODEL, EmbeddingCache, Encoder, embedding_meta, make_encoder
from .errors import BuildError
from .glossary import GLOSSARY_CHOICES, settings_with_glossary
from .indexes import BM25Index, BM25Params, DenseIndex, KeywordIndex
from .manifest import MANIFEST_VERSION, file_entries, verifies, write_manifest
from .passage import Passage
from .store import save_passages

INDEX_NAMES = ("keyword", "bm25", "dense")


@dataclass
class BuildConfig:
    corpus_dirs: Sequence[Path]
    index_root: Path = Path("indexes")
    indexes: Sequence[str] = INDEX_NAMES
    model: str = DEFAULT_MODEL
    max_chars: int = DEFAULT_MAX_CHARS
    bm25: BM25Params = field(default_factory=BM25Params)
    analyzer: AnalyzerSettings = field(default_factory=AnalyzerSettings)
    glossary: str = "auto"  # queries' plain words → the law's (rag_server.glossary): auto, lgpd, none
    dense_kind: str = "flat"
    batch_size: int = 64
    keep_builds: int = 3
    progress: bool = True
    cache_dir: Path | None = None  # embedding cache; default <index_root>/cache

    def validate(self) -> None:
        unknown = [name for name in self.indexes if name not in INDEX_NAMES]
        if unknown or not self.indexes:
            raise BuildError(f"unknown index {unknown or '(none)'}; choose from {list(INDEX_NAMES)}")
        if self.max_chars < 100:
            raise BuildError("max_chars must be at least 100")
        if self.keep_builds < 1:
            raise BuildError("keep_builds must be at least 1")
        if self.glossary not in GLOSSARY_CHOICES:
            raise BuildError(f"unknown glossary {self.glossary!r}; choose from {list(GLOSSARY_CHOICES)}")

    def analyzer_for(self, passages: Sequence[Passage]) -> AnalyzerSettings:
        """The analyzer settings a build of ``passages`` records (its glossary decided)."""
        return settings_with_glossary(self.analyzer, self.glossary, (p.text for p in passages))


@dataclass
class BuildResult:
    build_id: str
    path: Path
    manifest: dict[str, Any]
    encoded: int  # passages the encoder actually embedded (the rest came from the cache)


def new_build_id(corpus_sum: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # sorts chronologically
    return f"{stamp}-{corpus_sum[:8]}-{uuid.uuid4().hex[:6]}"


class _Stages:
    """Times each stage; the durations go into the manifest."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = fn()
        self.durations[name] = round(time.perf_counter() - start, 4)
        return result


def build_index(
    config: BuildConfig,
    encoder: Encoder | None = None,
    after_stage: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build every requested index and switch it in. ``encoder`` defaults to ``config.model``;
    ``after_stage`` is called after each stage (tests use it to fail a build midway)."""
    config.validate()
    catalog = IndexCatalog(config.index_root)
    stages = _Stages()
    hook = after_stage or (lambda _stage: None)
    with catalog.lock():
        docs = stages.run("load", lambda: load_corpus(config.corpus_dirs))
        corpus_sum = corpus_checksum(config.corpus_dirs)
        hook("load")
        passages: list[Passage] = stages.run(
            "chunk",
            lambda: [p for d in _progress(docs, "chunking", config) for p in chunk_document(d, config.max_chars)],
        )
        if not passages:
            raise BuildError(f"{', '.join(map(str, config.corpus_dirs))}: the corpus holds no text")
        hook("chunk")
        build_id = new_build_id(corpus_sum)
        temp = catalog.new_temp_dir(build_id)
        try:
            manifest, encoded = _write_indexes(config, catalog, temp, passages, stages, encoder, hook)
            manifest.update(
                build_id=build_id,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                corpus_checksum=corpus_sum,
                corpus_dirs=[str(d) for d in config.corpus_dirs],
                document_count=len(docs),
            )
            stages.run("write", lambda: _write_manifest(temp, manifest, stages))
            hook("write")
            final = catalog.publish(temp, build_id)
        except BaseException:
            # Nothing was switched; remove the partial build (a SIGKILL leaves it as debris
            # that the next build clears).
            shutil.rmtree(temp, ignore_errors=True)
            raise
        catalog.prune(config.keep_builds, verifies=verifies)
    return BuildResult(build_id, final, manifest, encoded)


def _progress(items: Sequence[Any], desc: str, config: BuildConfig) -> Any:
    return tqdm(items, desc=desc, unit="doc", disable=not config.progress, leave=False)


def _write_indexes(
    config: BuildConfig,
    catalog: IndexCatalog,
    out: Path,
    passages: list[Passage],
    stages: _Stages,
    encoder: Encoder | None,
    hook: Callable[[str], None],
) -> tuple[dict[str, Any], int]:
    save_passages(out / "passages.jsonl", passages)
    analyzer_settings = config.analyzer_for(passages)
    analyzer = Analyzer(analyzer_settings)
    manifest: dict[str, Any] = {
        "format_version": MANIFEST_VERSION,
        "rag_server_version": __version__,
        "passage_count": len(passages),
        "passages_by_language": dict(Counter(p.language for p in passages)),
        "passages_by_type": dict(Counter(p.doc_type for p in passages)),
        "chunking": {"max_chars": config.max_chars},
        "analyzer": analyzer_settings.to_dict(),
        "indexes": list(config.indexes),
    }
    encoded = 0
    if {"keyword", "bm25"} & set(config.indexes):
        tokens = stages.run(
            "analyze",
            lambda: [
                analyzer.tokens(p.index_text, p.language)
                for p in tqdm(passages, desc="analyzing", unit="passage", disable=not config.progress, leave=False)
            ],
        )
        if "keyword" in config.indexes:
            stages.run("keyword", lambda: KeywordIndex.build(tokens).save(out / "keyword"))
            hook("keyword")
        if "bm25" in config.indexes:
            stages.run("bm25", lambda: BM25Index.build(tokens, config.bm25).save(out / "bm25"))
            manifest["bm25"] = config.bm25.to_dict()
            hook("bm25")
    if "dense" in config.indexes:
        enc: Encoder = encoder or stages.run("load_model", lambda: make_encoder(config.model))
        cache = EmbeddingCache.for_encoder(config.cache_dir or catalog.cache_dir, enc)
        texts = [p.index_text for p in passages]
        vectors, encoded = stages.run(
            "embed", lambda: cache.embed(enc, texts, batch_size=config.batch_size, progress=config.progress)
        )
        hook("embed")
        dense = stages.run("dense", lambda: DenseIndex.build(vectors, enc.name, config.dense_kind))
        dense.save(out / "dense")
        if cache.dirty:
            cache.save()
        manifest["embedding"] = {
            **embedding_meta(enc),
            "dimension": int(vectors.shape[1]),
            "index_kind": config.dense_kind,
            "encoded": encoded,
            "from_cache": len(passages) - encoded,
        }
        hook("dense")
    return manifest, encoded


def _write_manifest(out: Path, manifest: dict[str, Any], stages: _Stages) -> None:
    manifest["files"] = file_entries(out)
    manifest["stage_seconds"] = dict(stages.durations)
    write_manifest(out, manifest)
