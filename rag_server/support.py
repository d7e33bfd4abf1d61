"""Is a question about what the corpus covers? A classifier on the question's own embedding.

``/v1/ask`` refuses ("not enough evidence") when its answer would not rest on the corpus. The
first check was one number: the best cosine between the question and a retrieved passage,
against a threshold. Near-misses — other Brazilian laws, generic IT questions — score like
real questions on that number (docs/BENCHMARKS.md). The question's vector says more: what it
is about, not only how close its nearest passage is. :class:`SupportClassifier` is a logistic
regression on ``[COSINE_SCALE × best cosine, the question's unit vector]``, fitted on the dev
splits of every question set with ``rag-server calibrate --fit-classifier``; its threshold is
chosen on 5-fold cross-validated dev scores as the cosine's was: the highest that still answers
``MIN_ANSWERED`` of in-domain dev questions.

A classifier reads one model's vectors: it is saved with the checksum of the embedding model it
was fitted on and applies only to builds embedded with that model (``classifier_for``); other
builds keep the cosine threshold. Saved as JSON (``FORMAT_VERSION``), never pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ModelError

FORMAT_VERSION = 1
COSINE_SCALE = 10.0
"""The best cosine enters multiplied by 10: in-domain and off-topic questions differ by a few
hundredths of cosine, the vector's coordinates by as little, and one L2 penalty serves both."""
MIN_ANSWERED = 0.95
DEFAULT_C = 10.0
"""Inverse L2 strength, chosen on dev (scripts/support_classifier.py, docs/BENCHMARKS.md)."""
PACKAGED = Path(__file__).with_name("support_models")


@dataclass(frozen=True)
class SupportClassifier:
    """``score = bias + cosine_weight × COSINE_SCALE × cosine + weights · vector``; supported
    when the score reaches ``threshold``. ``model_checksum`` names the embedding model whose
    query vectors it reads."""

    model: str
    model_checksum: str
    cosine_weight: float
    weights: tuple[float, ...]
    bias: float
    threshold: float

    @cached_property
    def _weight_array(self) -> npt.NDArray[np.float64]:
        """``weights`` as an array, made once: ``score`` runs on every question asked."""
        return np.asarray(self.weights, dtype=np.float64)

    def score(self, cosine: float, vector: npt.NDArray[np.float32]) -> float:
        if vector.shape != (len(self.weights),):
            raise ModelError(f"support classifier reads {len(self.weights)}-dimensional vectors, got {vector.shape}")
        return float(self.bias + self.cosine_weight * COSINE_SCALE * cosine + self._weight_array @ vector)

    def supports(self, cosine: float, vector: npt.NDArray[np.float32]) -> bool:
        return self.score(cosine, vector) >= self.threshold

    def save(self, path: Path | str) -> None:
        record: dict[str, Any] = {"version": FORMAT_VERSION, "cosine_scale": COSINE_SCALE}
        record |= {f.name: getattr(self, f.name) for f in fields(self)}
        record["weights"] = list(self.weights)
        try:
            Path(path).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"{path}: cannot write the support classifier ({exc.strerror or exc})") from None

    @classmethod
    def load(cls, path: Path | str) -> SupportClassifier:
        """The classifier saved at ``path``; ModelError naming the file when it is not one."""
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
            if record.get("version") != FORMAT_VERSION or record.get("cosine_scale") != COSINE_SCALE:
                raise ValueError(f"format version {record.get('version')!r}, expected {FORMAT_VERSION}")
            return cls(
                model=str(record["model"]),
                model_checksum=str(record["model_checksum"]),
                cosine_weight=float(record["cosine_weight"]),
                weights=tuple(float(w) for w in record["weights"]),
                bias=float(record["bias"]),
                threshold=float(record["threshold"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelError(f"{path}: not a support classifier ({exc})") from None


def fit_support_classifier(
    model: str,
    model_checksum: str,
    cosines: Sequence[float],
    vectors: npt.NDArray[np.float32],
    in_domain: Sequence[bool],
    c: float = DEFAULT_C,
) -> SupportClassifier:
    """A class-balanced logistic regression on dev questions, its threshold chosen on 5-fold
    cross-validated scores (scores on its own training questions would answer too many)."""
    from sklearn.model_selection import cross_val_predict

    x = features(cosines, vectors)
    y = np.asarray(in_domain, dtype=bool)
    regression = logistic(c)
    held_out = cross_val_predict(regression, x, y, cv=5, method="decision_function")
    regression.fit(x, y)
    coefficients = regression.coef_[0]
    return SupportClassifier(
        model=model,
        model_checksum=model_checksum,
        cosine_weight=float(coefficients[0]),
        weights=tuple(float(w) for w in coefficients[1:]),
        bias=float(regression.intercept_[0]),
        threshold=answering_threshold(held_out, y),
    )


def logistic(c: float = DEFAULT_C) -> Any:
    """The unfitted regression: class-balanced (in-domain questions outnumber off-topic ones
    four to one), L2 strength ``1 / c``."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced")


def features(cosines: Sequence[float], vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Rows ``[COSINE_SCALE × cosine, vector]``, one per question."""
    return np.hstack([COSINE_SCALE * np.asarray(cosines, dtype=np.float64)[:, None], np.asarray(vectors)])


def answering_threshold(scores: npt.NDArray[np.float64], in_domain: npt.NDArray[np.bool_]) -> float:
    """The highest score threshold that answers at least ``MIN_ANSWERED`` of in-domain questions."""
    return float(max(t for t in np.unique(scores) if (scores[in_domain] >= t).mean() >= MIN_ANSWERED))


@cache
def _packaged() -> dict[str, SupportClassifier]:
    found = (SupportClassifier.load(path) for path in sorted(PACKAGED.glob("*.json")))
    return {classifier.model_checksum: classifier for classifier in found}


def classifier_for(model_checksum: str | None) -> SupportClassifier | None:
    """The packaged classifier fitted on the embedding model with ``model_checksum``, or None."""
    return _packaged().get(model_checksum) if model_checksum else None
