"""The real bundled encoder: the one-query path (traced when exact) gives ``model.encode``'s vectors."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from rag_server import embedding_trace
from rag_server.embedding import SentenceTransformerEncoder
from rag_server.embedding_trace import TracedForward

pytestmark = pytest.mark.slow  # the real model

TEXTS = [
    "O que é dado pessoal sensível segundo a LGPD?",
    "How are GPU tenants isolated on dedicated servers?",
    "x" * 3000,  # longer than the model's 256-token window: truncated the same way
    "",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(eager=True)


def test_the_bundled_model_is_traced(encoder: SentenceTransformerEncoder) -> None:
    assert encoder._traced is not None  # so the test below checks the traced path


@pytest.mark.parametrize("text", TEXTS, ids=["pt", "en", "long", "empty"])
def test_one_query_path_matches_model_encode(encoder: SentenceTransformerEncoder, text: str) -> None:
    fast = encoder.encode([text])
    reference = encoder._model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
    assert fast.shape == (1, encoder.dimension) and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, reference)
    assert np.linalg.norm(fast[0]) == pytest.approx(1.0, abs=1e-5)


def test_batches_keep_the_library_path(encoder: SentenceTransformerEncoder) -> None:
    batch = encoder.encode(TEXTS)
    one_by_one = np.vstack([encoder.encode([t]) for t in TEXTS])
    assert batch.shape == (len(TEXTS), encoder.dimension)
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)  # padding in a batch moves the last bits


def test_a_trace_that_differs_is_not_used(encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_a_little(self: TracedForward, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module(*tensors.values()) + 1e-4  # type: ignore[no-any-return]

    monkeypatch.setattr(TracedForward, "__call__", off_by_a_little)
    assert TracedForward.build(encoder._model) is None


def test_a_trace_that_fails_is_not_used(encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cannot trace this model")

    monkeypatch.setattr(embedding_trace.torch.jit, "trace", refuse)
    assert TracedForward.build(encoder._model) is None


def test_eager_pass_same_vectors(encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    traced = encoder.encode([TEXTS[0]])
    monkeypatch.setattr(encoder, "_traced", None)
    np.testing.assert_array_equal(encoder.encode([TEXTS[0]]), traced)


def test_first_queries_arriving_together_load_the_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = SentenceTransformerEncoder()
    loads: list[int] = []

    def slow_load() -> tuple[object, None]:
        loads.append(1)
        time.sleep(0.2)  # long enough for the other threads to arrive meanwhile
        return object(), None

    monkeypatch.setattr(fresh, "_load_model", slow_load)
    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda _: fresh._load(), range(4)))
    assert len(loads) == 1 and all(m is models[0] for m in models)


def test_a_bfloat16_model_still_gives_float32_vectors() -> None:
    encoder = SentenceTransformerEncoder(eager=True)
    encoder._model.to(torch.bfloat16)
    encoder._traced = None  # the trace was made for the float32 weights
    vector = encoder.encode([TEXTS[0]])
    assert vector.dtype == np.float32 and vector.shape == (1, encoder.dimension)
    assert np.linalg.norm(vector[0]) == pytest.approx(1.0, abs=1e-3)
