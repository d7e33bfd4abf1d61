"""The collection a build is written into: passages, their analysed terms, vectors, filters.

BM25 runs inside Milvus (its BM25 function turns ``terms`` into a sparse vector; the index
keeps the corpus statistics), but the terms are the project's own analysis
(:class:`rag_server.analysis.Analyzer`: accent folding, stop words of both languages, Snowball
stemming by passage language, Portuguese suffix repair), written space-separated for Milvus's
``standard`` tokenizer. So a query is analysed once, the same way for both backends, and the
stemming does not depend on which analyzers a Milvus version ships (Milvus Lite 3.2 has only
``standard`` and ``jieba``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..indexes import BM25Params
from ..passage import Passage
from ..retrieval.base import Filters, filter_values

ROW, PASSAGE_ID, TERMS, SPARSE, VECTOR = "row", "passage_id", "terms", "sparse", "vector"
TERM, DOC_FREQ, UNIT = "term", "doc_freq", "unit"  # the build's term table (document frequencies)
MAX_TERM_BYTES = 256
META_FIELDS = ("doc_id", "title", "language", "doc_type", "source", "section", "article", "provision", "text")
OUTPUT_FIELDS = [PASSAGE_ID, *META_FIELDS]
# Bytes (UTF-8) each text field may hold; a passage over a limit stops the build, naming it.
MAX_BYTES = {
    PASSAGE_ID: 512,
    "doc_id": 512,
    "title": 2048,
    "language": 16,
    "doc_type": 64,
    "source": 1024,
    "section": 4096,
    "article": 64,
    "provision": 512,
    "text": 65_535,
    TERMS: 65_535,
}
HNSW = {"M": 16, "efConstruction": 200}


def collection_name(alias: str, build_id: str) -> str:
    """``<alias>_b_<build id>``: sorts by creation time, like local build directories."""
    return f"{alias}_b_{build_id.replace('-', '_')}"


def terms_collection_name(collection: str) -> str:
    """The term table of the build in ``collection`` (``<alias>_t_<build id>``)."""
    alias, _, build = collection.rpartition("_b_")
    return f"{alias}_t_{build}"


def create_terms_schema(pymilvus: Any) -> Any:
    """Term → number of passages holding it: the idf the evidence ranker weighs question terms
    with, as a local build reads it from its BM25 index. Milvus wants a vector field in every
    collection: ``unit`` is a constant 2-d one, never searched."""
    dt = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(TERM, dt.VARCHAR, is_primary=True, max_length=MAX_TERM_BYTES)
    schema.add_field(DOC_FREQ, dt.INT64)
    schema.add_field(UNIT, dt.FLOAT_VECTOR, dim=2)
    return schema


def terms_index_params(client: Any) -> Any:
    params = client.prepare_index_params()
    params.add_index(field_name=UNIT, index_type="FLAT", metric_type="L2")
    return params


def index_terms(terms: Iterable[str]) -> str:
    """Terms for Milvus's ``standard`` tokenizer (runs of word characters): the one character
    the project's terms hold beyond those, the hyphen of ``55-j``, becomes an underscore."""
    return " ".join(t.replace("-", "_") for t in terms)


def create_schema(pymilvus: Any, dimension: int) -> Any:
    dt = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ROW, dt.INT64, is_primary=True)  # the passage's position in the build
    schema.add_field(PASSAGE_ID, dt.VARCHAR, max_length=MAX_BYTES[PASSAGE_ID])
    for name in META_FIELDS:
        schema.add_field(name, dt.VARCHAR, max_length=MAX_BYTES[name])
    schema.add_field(
        TERMS, dt.VARCHAR, max_length=MAX_BYTES[TERMS], enable_analyzer=True, analyzer_params={"tokenizer": "standard"}
    )
    schema.add_field(SPARSE, dt.SPARSE_FLOAT_VECTOR)
    schema.add_field(VECTOR, dt.FLOAT_VECTOR, dim=dimension)
    schema.add_function(
        pymilvus.Function(
            name="bm25",
            function_type=pymilvus.FunctionType.BM25,
            input_field_names=[TERMS],
            output_field_names=[SPARSE],
        )
    )
    return schema


def index_params(client: Any, bm25: BM25Params) -> Any:
    params = client.prepare_index_params()
    params.add_index(field_name=VECTOR, index_type="HNSW", metric_type="IP", params=dict(HNSW))
    params.add_index(
        field_name=SPARSE,
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": bm25.k1, "bm25_b": bm25.b},
    )
    for name in ("language", "doc_type", "doc_id"):  # the filters most used
        params.add_index(field_name=name, index_type="INVERTED")
    return params


def row_of(position: int, passage: Passage, terms: Sequence[str], vector: Sequence[float]) -> dict[str, Any]:
    row: dict[str, Any] = {ROW: position, PASSAGE_ID: passage.id, TERMS: index_terms(terms), VECTOR: vector}
    for name in META_FIELDS:
        value = getattr(passage, name)
        row[name] = "" if value is None else value  # None ↔ "" (no nullable fields needed)
    return row


def too_long(row: Mapping[str, Any]) -> str | None:
    """The first field of ``row`` over its byte limit, described; None when all fit."""
    for name, limit in MAX_BYTES.items():
        size = len(str(row[name]).encode("utf-8"))
        if size > limit:
            return f"field {name!r} holds {size} bytes, over Milvus's limit of {limit}"
    return None


def passage_of(entity: Mapping[str, Any]) -> Passage:
    values = {name: entity.get(name) for name in META_FIELDS}
    for optional in ("article", "provision"):
        values[optional] = values[optional] or None
    return Passage(id=str(entity[PASSAGE_ID]), **values)  # type: ignore[arg-type]


def filter_expression(filters: Filters | None) -> str:
    """The Milvus boolean expression of the API's filters (validated like the local ones):
    ``language in ["pt"] and article in ["2", "3"]``; "" when nothing is filtered."""
    wanted = filter_values(filters)
    if not wanted:
        return ""
    return " and ".join(
        f"{name} in [{', '.join(_literal(v) for v in sorted(values))}]" for name, values in wanted.items()
    )


def _literal(value: str) -> str:
    """A string literal of Milvus's expression language: JSON's quoting (backslash escapes)."""
    return json.dumps(value, ensure_ascii=False)
