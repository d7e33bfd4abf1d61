"""The real bundled encoder: the one-query fast path gives the vectors ``model.encode`` gives."""

from __future__ import annotations

import numpy as np
import pytest

from rag_server.embedding import SentenceTransformerEncoder

TEXTS = [
    "O que é dado pessoal sensível segundo a LGPD?",
    "How are GPU tenants isolated on dedicated servers?",
    "x" * 3000,  # longer than the model's 256-token window: truncated the same way
    "",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(eager=True)


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
