import random
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from rag_server.analysis import Analyzer
from rag_server.chunking import chunk_corpus
from rag_server.documents import load_corpus
from rag_server.errors import IndexLoadError
from rag_server.indexes import BM25Index, BM25Params, DenseIndex, KeywordIndex

REPO_CORPUS = Path(__file__).parents[1] / "corpus"


def _corpus_tokens(root: Path) -> list[list[str]]:
    analyzer = Analyzer()
    return [analyzer.tokens(p.index_text, p.language) for p in chunk_corpus(load_corpus([root]))]


def test_bm25_scores_equal_rank_bm25_on_the_project_corpus() -> None:
    tokens = _corpus_tokens(REPO_CORPUS)
    ours, reference = BM25Index.build(tokens), BM25Okapi(tokens)
    analyzer = Analyzer()
    queries = [
        "prazo para comunicar incidente de segurança",
        "who is the controller of the data",
        "consent consent revocation",
        "criptografia em repouso e chaves",
        "termo-inexistente",
    ]
    for q in queries:
        terms = analyzer.tokens(q)
        np.testing.assert_allclose(ours.get_scores(terms), reference.get_scores(terms), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("params", [BM25Params(), BM25Params(k1=0.9, b=0.4, epsilon=0.1)])
def test_bm25_equals_rank_bm25_with_negative_idf_and_empty_docs(params: BM25Params) -> None:
    rng = random.Random(7)
    vocab = [f"t{i}" for i in range(40)]
    corpus = [[rng.choice(vocab[: rng.randint(1, 40)]) for _ in range(rng.randint(0, 30))] for _ in range(300)]
    ours = BM25Index.build(corpus, params)
    reference = BM25Okapi(corpus, k1=params.k1, b=params.b, epsilon=params.epsilon)
    for query in (["t0", "t1", "t0"], ["t39", "zz"], ["t5"]):
        np.testing.assert_allclose(ours.get_scores(query), reference.get_scores(query), rtol=1e-5, atol=1e-6)


def test_bm25_top_k_matches_the_reference_ranking() -> None:
    tokens = _corpus_tokens(REPO_CORPUS)
    ours, reference = BM25Index.build(tokens), BM25Okapi(tokens)
    terms = Analyzer().tokens("direito de revisão de decisões automatizadas")
    found = ours.search(terms, 10)
    expected = np.argsort(-reference.get_scores(terms), kind="stable")[:10]
    assert list(found.indices) == list(expected)
    assert np.all(np.diff(found.scores) <= 0)


def test_keyword_overlap_counts_distinct_shared_terms() -> None:
    index = KeywordIndex.build([["a", "b", "b"], ["b", "c"], ["d"]])
    assert list(index.get_scores(["b", "b", "c"])) == [1.0, 2.0, 0.0]
    found = index.search(["b", "c"], k=5)
    assert list(found.indices) == [1, 0]  # only passages sharing a term; ties by corpus order


def test_mask_restricts_sparse_results() -> None:
    index = BM25Index.build([["x", "y"], ["x"], ["x", "x"], ["z"], ["w"], ["v"]])
    found = index.search(["x"], 5, mask=np.array([True, False, True, True, True, True]))
    assert set(found.indices) == {0, 2}


def test_sparse_indexes_round_trip(tmp_path: Path) -> None:
    tokens = _corpus_tokens(REPO_CORPUS)[:200]
    for cls in (KeywordIndex, BM25Index):
        index = cls.build(tokens)
        index.save(tmp_path / cls.kind)
        loaded = cls.load(tmp_path / cls.kind)
        np.testing.assert_array_equal(loaded.get_scores(tokens[3]), index.get_scores(tokens[3]))
    assert BM25Index.load(tmp_path / "bm25").params == BM25Params()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_dense_round_trip_and_search(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = DenseIndex.build(vectors, "test-model", kind)
    index.save(tmp_path / "dense")
    loaded = DenseIndex.load(tmp_path / "dense")
    found = loaded.search(vectors[42], 5)
    assert found.indices[0] == 42 and found.scores[0] == pytest.approx(1.0, abs=1e-5)
    mask = np.zeros(300, dtype=bool)
    mask[[1, 2, 3]] = True
    masked = loaded.search(vectors[42], 5, mask=mask)
    assert set(masked.indices) <= {1, 2, 3} and len(masked.indices) == 3


def test_truncated_faiss_file_is_refused(tmp_path: Path) -> None:
    vectors = np.eye(8, dtype=np.float32)
    DenseIndex.build(vectors, "m").save(tmp_path)
    data = (tmp_path / "index.faiss").read_bytes()
    (tmp_path / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match="index.faiss"):
        DenseIndex.load(tmp_path)


def test_missing_array_is_named(tmp_path: Path) -> None:
    BM25Index.build([["a"], ["b"]]).save(tmp_path)
    (tmp_path / "weights.npy").unlink()
    with pytest.raises(IndexLoadError, match="weights.npy: missing file"):
        BM25Index.load(tmp_path)


def test_passages_of_a_zero_idf_term_still_match() -> None:
    # "x" is in exactly half the passages: idf = ln(2.5) - ln(2.5) = 0, so every posting
    # weighs 0, yet its passages hold a query term and are returned (as before the fast path).
    index = BM25Index.build([["x", "a"], ["x", "b"], ["c"], ["d"]])
    found = index.search(["x"], 10)
    assert list(found.indices) == [0, 1] and list(found.scores) == [0.0, 0.0]
    assert list(index.search(["x", "c", "x"], 10).indices) == [2, 0, 1]


def test_top_k_keeps_order_and_ties_on_a_random_corpus() -> None:
    rng = random.Random(3)
    vocab = [f"t{i}" for i in range(30)]
    corpus = [[rng.choice(vocab) for _ in range(rng.randint(1, 12))] for _ in range(500)]
    index, reference = BM25Index.build(corpus), BM25Okapi(corpus)
    for _ in range(30):
        query = [rng.choice(vocab) for _ in range(rng.randint(1, 5))]
        expected = reference.get_scores(query)
        matched = [i for i, doc in enumerate(corpus) if set(doc) & set(query)]
        for k in (1, 7, 100):
            found = index.search(query, k)
            want = sorted(matched, key=lambda i: (-round(expected[i], 4), i))[:k]
            assert list(found.indices) == want or np.allclose(expected[list(found.indices)], expected[want])
            np.testing.assert_allclose(found.scores, expected[found.indices], rtol=1e-5, atol=1e-6)


def test_term_matrix_equals_counting_each_passage() -> None:
    from collections import Counter

    from rag_server.indexes.sparse import TermMatrix

    rng = random.Random(11)
    vocab = [f"w{i}" for i in range(60)]
    for corpus in ([], [[]], [["a"]], [[rng.choice(vocab) for _ in range(rng.randint(0, 25))] for _ in range(200)]):
        m = TermMatrix.from_tokens(corpus)
        terms: dict[str, int] = {}
        postings: dict[int, list[tuple[int, int]]] = {}
        for doc, tokens in enumerate(corpus):
            for term, count in Counter(tokens).items():
                postings.setdefault(terms.setdefault(term, len(terms)), []).append((doc, count))
        assert m.vocab == terms
        assert m.doc_len.tolist() == [len(t) for t in corpus] and m.doc_ids.dtype == np.int32
        for row in range(len(terms)):
            a, b = m.indptr[row], m.indptr[row + 1]
            assert list(zip(m.doc_ids[a:b].tolist(), m.tf[a:b].tolist(), strict=True)) == postings[row]
        assert int(m.indptr[-1]) == m.doc_ids.size == m.tf.size


def test_on_disk_format_is_still_version_1_and_other_versions_are_refused(tmp_path: Path) -> None:
    # The query-time changes kept the files as they were: builds made before them still load.
    import json

    BM25Index.build([["a", "b"], ["b"]]).save(tmp_path)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["version"] == 1
    expected = {"indptr": np.int64, "doc_ids": np.int32, "tf": np.float32, "doc_len": np.float32}
    for name, dtype in {**expected, "weights": np.float32}.items():
        assert np.load(tmp_path / f"{name}.npy").dtype == dtype, name
    (tmp_path / "params.json").write_text(json.dumps({**params, "version": 2}))
    with pytest.raises(IndexLoadError, match="index version 2 is not 1; rebuild"):
        BM25Index.load(tmp_path)


def test_passages_scoring_below_zero_still_match() -> None:
    # idf(a) = idf(b) < 0 and their mean pulls the epsilon floor below 0 (as in rank_bm25).
    corpus = [["a", "b"], ["a", "b"], ["a", "b"], ["c"]]
    index, reference = BM25Index.build(corpus), BM25Okapi(corpus)
    for query in (["a", "c"], ["c", "a", "a"], ["a"]):
        found = index.search(query, 10)
        expected = reference.get_scores(query)
        assert sorted(found.indices.tolist()) == [i for i, doc in enumerate(corpus) if set(doc) & set(query)]
        np.testing.assert_allclose(found.scores, expected[found.indices], rtol=1e-5, atol=1e-6)
    assert index.search(["a"], 10).scores.max() < 0
