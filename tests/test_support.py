"""The support classifier: its file, its arithmetic, and when the pipeline uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag_server.embedding import make_encoder
from rag_server.errors import ModelError
from rag_server.pipeline import RagPipeline
from rag_server.support import (
    COSINE_SCALE,
    SupportClassifier,
    answering_threshold,
    classifier_for,
    fit_support_classifier,
)


def classifier(checksum: str = "abc", threshold: float = 0.0) -> SupportClassifier:
    return SupportClassifier("m", checksum, cosine_weight=1.0, weights=(2.0, -1.0), bias=-8.0, threshold=threshold)


def test_the_score_adds_the_scaled_cosine_and_the_vector_s_weights() -> None:
    c = classifier()
    vector = np.array([0.6, 0.8], dtype=np.float32)
    assert c.score(0.9, vector) == pytest.approx(-8.0 + COSINE_SCALE * 0.9 + 2.0 * 0.6 - 0.8)
    assert c.supports(0.9, vector) and not c.supports(0.7, vector)
    with pytest.raises(ModelError, match="2-dimensional"):
        c.score(0.9, np.zeros(3, dtype=np.float32))


def test_a_classifier_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    classifier(threshold=0.25).save(path)
    assert json.loads(path.read_text())["version"] == 1
    assert SupportClassifier.load(path) == classifier(threshold=0.25)


@pytest.mark.parametrize("content", ["not json", '{"version": 99}', '{"version": 1, "cosine_scale": 10.0}'])
def test_a_bad_file_is_a_model_error_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ModelError, match="bad.json: not a support classifier"):
        SupportClassifier.load(path)


def test_the_threshold_answers_the_share_of_in_domain_questions_asked() -> None:
    scores = np.arange(20, dtype=np.float64)
    in_domain = np.ones(20, dtype=bool)
    assert answering_threshold(scores, in_domain) == 1.0  # 19 of 20 answered: 95%


def test_fitting_separates_two_topics_and_keeps_the_model_checksum() -> None:
    rng = np.random.default_rng(0)
    on, off = rng.normal([1, 0, 0], 0.3, (60, 3)), rng.normal([0, 1, 0], 0.3, (60, 3))
    vectors = np.vstack([on, off]).astype(np.float32)
    cosines = [0.85] * 120  # the cosine alone cannot tell them apart
    fitted = fit_support_classifier("m", "sum", cosines, vectors, [True] * 60 + [False] * 60)
    assert fitted.model_checksum == "sum" and len(fitted.weights) == 3
    assert fitted.supports(0.85, np.array([1, 0, 0], dtype=np.float32))
    assert not fitted.supports(0.85, np.array([0, 1, 0], dtype=np.float32))


def test_the_packaged_classifier_is_the_default_model_s() -> None:
    found = classifier_for(make_encoder("e5-small").checksum)
    assert found is not None and len(found.weights) == 384
    assert classifier_for("another model") is None and classifier_for(None) is None


def test_the_pipeline_asks_the_build_s_classifier_unless_a_threshold_is_set(
    built, monkeypatch: pytest.MonkeyPatch, fake_encoder
) -> None:  # type: ignore[no-untyped-def]
    checksum = built.manifest["embedding"]["model_checksum"]
    dimension = built.manifest["embedding"]["dimension"]
    refuse_all = SupportClassifier("fake", checksum, 0.0, (0.0,) * dimension, bias=-1.0, threshold=0.0)
    monkeypatch.setattr("rag_server.pipeline.classifier_for", lambda c: refuse_all if c == checksum else None)
    served = RagPipeline(built.path, encoder=fake_encoder, support_threshold=None)
    assert served.support_classifier() is refuse_all
    assert not served.ask("Qual o prazo para comunicar um incidente?").supported
    configured = RagPipeline(built.path, encoder=fake_encoder, support_threshold=-1.0)
    assert configured.support_classifier() is None
    assert configured.ask("Qual o prazo para comunicar um incidente?").supported


def test_an_unwritable_path_is_a_model_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing/c.json: cannot write the support classifier"):
        classifier().save(tmp_path / "missing" / "c.json")


def test_calibrate_says_a_missing_directory_before_scoring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rag_server.cli import main

    code = main(["calibrate", "--index", str(tmp_path), "--fit-classifier", str(tmp_path / "no" / "c.json")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "c.json: its directory does not exist" in err
