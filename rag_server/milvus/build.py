"""``rag-server build --backend milvus``: a build written into a new collection, verified, then
served by switching the alias.

The same corpus loading, chunking, analysis and encoder (with its embedding cache) as a local
build. Stages: load, chunk, analyze, embed (local work), then create, insert, flush, verify,
switch (Milvus). Until the switch the alias names the previous collection, so a build that
fails or is killed anywhere before it changes nothing served; its partial collection is
dropped (or, after a SIGKILL, by the next build's prune). The manifest is written onto the
collection last, so only a complete, verified build carries one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .. import __version__
from ..analysis import Analyzer
from ..build import BuildConfig, new_build_id
from ..catalog import IndexCatalog
from ..chunking import chunk_document
from ..documents import corpus_checksum, load_corpus
from ..embedding import EmbeddingCache, Encoder, embedding_meta, make_encoder
from ..errors import BackendUnavailableError, BuildError
from ..manifest import MANIFEST_VERSION
from ..passage import Passage
from .client import MANIFEST_PROPERTY, MilvusConnection, MilvusSettings
from .schema import (
    DOC_FREQ,
    MAX_TERM_BYTES,
    ROW,
    SPARSE,
    TERM,
    UNIT,
    VECTOR,
    collection_name,
    create_schema,
    create_terms_schema,
    index_params,
    index_terms,
    row_of,
    terms_collection_name,
    terms_index_params,
    too_long,
)

INSERT_BATCH = 1000  # rows per insert call: a few MB per gRPC message with 384-d vectors
MIN_KEEP = 2  # the new collection and the one replicas may still be reading until they follow the alias


class Rows(NamedTuple):
    """What a build writes, one row per passage: the passage, its analysed terms, its vector."""

    passages: Sequence[Passage]
    terms: Sequence[list[str]]
    vectors: npt.NDArray[np.float32]


@dataclass
class MilvusBuildResult:
    build_id: str
    collection: str
    manifest: dict[str, Any]
    encoded: int


def build_into_milvus(
    config: BuildConfig,
    settings: MilvusSettings,
    encoder: Encoder | None = None,
    after_stage: Callable[[str], None] | None = None,
    connection: MilvusConnection | None = None,
) -> MilvusBuildResult:
    """Build ``config``'s corpus into a new collection and switch ``settings.alias`` to it.
    ``after_stage`` is called after each stage (tests kill a build there)."""
    config.validate()
    conn = connection or MilvusConnection(settings)  # before the slow stages: an unreachable Milvus fails fast
    hook = after_stage or (lambda _stage: None)
    durations: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = fn()
        durations[name] = round(time.perf_counter() - start, 4)
        hook(name)
        return result

    docs = timed("load", lambda: load_corpus(config.corpus_dirs))
    corpus_sum = corpus_checksum(config.corpus_dirs)
    passages: list[Passage] = timed("chunk", lambda: [p for d in docs for p in chunk_document(d, config.max_chars)])
    if not passages:
        raise BuildError(f"{', '.join(map(str, config.corpus_dirs))}: the corpus holds no text")
    analyzer_settings = config.analyzer_for(passages)
    analyzer = Analyzer(analyzer_settings)
    terms = timed("analyze", lambda: [analyzer.tokens(p.index_text, p.language) for p in passages])
    enc: Encoder = encoder or make_encoder(config.model)
    cache = EmbeddingCache.for_encoder(config.cache_dir or IndexCatalog(config.index_root).cache_dir, enc)
    vectors, encoded = timed(
        "embed",
        lambda: cache.embed(
            enc, [p.index_text for p in passages], batch_size=config.batch_size, progress=config.progress
        ),
    )
    if cache.dirty:
        cache.save()

    build_id = new_build_id(corpus_sum)
    name = collection_name(settings.alias, build_id)
    term_table = terms_collection_name(name)
    timeout = settings.timeout_s
    client = conn.client
    try:
        timed(
            "create",
            lambda: conn.call(
                "create collection",
                lambda: client.create_collection(
                    name,
                    schema=create_schema(conn.pymilvus, int(vectors.shape[1])),
                    index_params=index_params(client, config.bm25),
                    consistency_level="Strong",
                    timeout=timeout,
                ),
            ),
        )
        rows = Rows(passages, terms, vectors)
        timed("insert", lambda: _insert(conn, name, rows, hook))
        timed("flush", lambda: conn.call("flush", lambda: client.flush(name, timeout=timeout)))
        timed("verify", lambda: verify(conn, name, rows))
        timed("terms", lambda: _write_terms(conn, term_table, terms))
        manifest: dict[str, Any] = {
            "format_version": MANIFEST_VERSION,
            "rag_server_version": __version__,
            "backend": "milvus",
            "collection": name,
            "build_id": build_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "corpus_checksum": corpus_sum,
            "document_count": len(docs),
            "passage_count": len(passages),
            "passages_by_language": dict(Counter(p.language for p in passages)),
            "passages_by_type": dict(Counter(p.doc_type for p in passages)),
            "chunking": {"max_chars": config.max_chars},
            "analyzer": analyzer_settings.to_dict(),
            "indexes": ["bm25", "dense"],
            "terms_collection": term_table,
            "bm25": config.bm25.to_dict(),
            "embedding": {
                **embedding_meta(enc),
                "dimension": int(vectors.shape[1]),
                "index_kind": "hnsw",
                "encoded": encoded,
                "from_cache": len(passages) - encoded,
            },
            "stage_seconds": dict(durations),
        }
        conn.call(
            "write manifest",
            lambda: client.alter_collection_properties(
                name, {MANIFEST_PROPERTY: json.dumps(manifest, ensure_ascii=False)}, timeout=timeout
            ),
        )
        hook("manifest")
        conn.point_alias(settings.alias, name)
        hook("switch")
    except BaseException:
        _drop_quietly(conn, name)  # never named by the alias: nothing served changes
        _drop_quietly(conn, term_table)
        raise
    prune(conn, settings.alias, max(config.keep_builds, MIN_KEEP), just_built=name)
    return MilvusBuildResult(build_id, name, manifest, encoded)


def _insert(conn: MilvusConnection, name: str, rows: Rows, hook: Callable[[str], None]) -> None:
    passages, terms, vectors = rows
    timeout = conn.settings.timeout_s
    for start in range(0, len(passages), INSERT_BATCH):
        batch = []
        for i in range(start, min(start + INSERT_BATCH, len(passages))):
            row = row_of(i, passages[i], terms[i], vectors[i].tolist())
            problem = too_long(row)
            if problem is not None:
                raise BuildError(f"passage {passages[i].id}: {problem}")
            batch.append(row)
        # Inserts of large batches may take longer than a query: allow them more time.
        conn.call("insert", partial(conn.client.insert, name, batch, timeout=timeout * 6))
        hook("insert-batch")


def _write_terms(conn: MilvusConnection, table: str, terms: Sequence[list[str]]) -> None:
    doc_freq = Counter(t for passage_terms in terms for t in set(passage_terms))
    client, timeout = conn.client, conn.settings.timeout_s
    conn.call(
        "create term table",
        partial(
            client.create_collection,
            table,
            schema=create_terms_schema(conn.pymilvus),
            index_params=terms_index_params(client),
            consistency_level="Strong",
            timeout=timeout,
        ),
    )
    rows = [{TERM: t, DOC_FREQ: n, UNIT: [1.0, 0.0]} for t, n in doc_freq.items() if len(t.encode()) <= MAX_TERM_BYTES]
    for start in range(0, len(rows), 5 * INSERT_BATCH):
        conn.call(
            "insert terms", partial(client.insert, table, rows[start : start + 5 * INSERT_BATCH], timeout=timeout * 6)
        )
    conn.call("flush terms", partial(client.flush, table, timeout=timeout))


def verify(conn: MilvusConnection, name: str, rows: Rows) -> None:
    """Row count equals the passages, and a probe finds a known passage by BM25 and by vector."""
    passages, terms, vectors = rows
    client, timeout = conn.client, conn.settings.timeout_s
    counted = conn.call(
        "count rows", lambda: client.query(name, filter="", output_fields=["count(*)"], timeout=timeout)
    )
    count = int(counted[0]["count(*)"]) if counted else 0
    if count != len(passages):
        raise BuildError(f"Milvus collection {name} holds {count} rows, expected {len(passages)}")
    probe = next((i for i, t in enumerate(terms) if t), None)
    checks: list[tuple[str, list[Any], str, dict[str, Any]]] = [
        ("dense probe", [vectors[0].tolist()], VECTOR, {"metric_type": "IP", "params": {"ef": 64}})
    ]
    if probe is not None:
        checks.append(("bm25 probe", [index_terms(terms[probe])], SPARSE, {"metric_type": "BM25"}))
    for what, data, field, params in checks:
        found = conn.call(
            what,
            partial(
                client.search,
                name,
                data=data,
                anns_field=field,
                limit=10,
                output_fields=[ROW],
                search_params=params,
                timeout=timeout,
            ),
        )
        want = 0 if field == VECTOR else probe
        found_rows = [int(hit["entity"][ROW]) for hit in (found[0] if found else [])]
        if want not in found_rows:
            raise BuildError(f"Milvus collection {name}: the {what} did not find passage {passages[want or 0].id}")


def prune(conn: MilvusConnection, alias: str, keep: int, just_built: str | None = None) -> list[str]:
    """Drop this alias's older builds: complete ones beyond the newest ``keep`` and unfinished
    ones older than ``just_built`` (left by killed builds); never the collection the alias names.
    Returns the names dropped."""
    prefix = f"{alias}_b_"
    served = conn.alias_target(alias)
    existing = conn.collections()
    ours = sorted(n for n in existing if n.startswith(prefix))
    complete = [n for n in ours if conn.manifest(n) is not None]
    kept = set(complete[-keep:]) | {served, just_built}
    dropped = []
    for name in ours:
        stale = name not in complete and just_built is not None and name < just_built
        if name not in kept and (name in complete or stale):
            conn.drop(name)
            dropped.append(name)
    for table in existing:  # term tables whose build is gone (dropped now, or by a killed build)
        owner = f"{alias}_b_{table[len(alias) + 3 :]}"
        gone = owner in dropped or owner not in existing
        if table.startswith(f"{alias}_t_") and gone and (just_built is None or owner < just_built):
            conn.drop(table)
            dropped.append(table)
    return dropped


def _drop_quietly(conn: MilvusConnection, name: str) -> None:
    with contextlib.suppress(BackendUnavailableError):  # else the next build's prune removes it
        conn.drop(name)
