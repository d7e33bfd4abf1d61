"""The product workflows of the command line: ``train`` (the generator), ``calibrate`` (the
support threshold) and ``tune`` (retrieval fusion), each backed by a library module."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from rag_server import cli
from rag_server.errors import ConfigError, InvalidParameterError
from rag_server.evaluation import StrategySpec
from rag_server.evaluation.calibration import calibrate, setting_for
from rag_server.evaluation.datasets import EvalQuery, EvalSet
from rag_server.evaluation.tuning import tune
from rag_server.generator import Generator
from rag_server.generator.paths import PACKAGED_CHECKPOINT
from rag_server.generator.training import SHIPPED_RECIPE, TrainConfig
from rag_server.indexes import BM25Params
from rag_server.pipeline import RagPipeline

from support import FIXTURE_CORPUS, FIXTURES

TINY = ["--steps", "6", "--batch-size", "4", "--block-size", "256", "--n-layer", "1", "--n-embd", "32"]
TINY += ["--n-head", "2", "--eval-interval", "3", "--eval-examples", "4", "--eval-generate", "2", "--device", "cpu"]


def test_train_end_to_end_from_a_recipe_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "generator.pt"
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"corpus": str(FIXTURE_CORPUS), "steps": 1000, "threads": 1, "seed": 7}))
    assert cli.main(["train", "--config", str(recipe), "--out", str(out), *TINY]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["checkpoint"] == str(out) and summary["config"]["steps"] == 6  # the option wins
    loaded = Generator.load(out)
    metrics = loaded.metrics
    assert math.isfinite(metrics["val_bpc"]) and metrics["steps"] == 6 and metrics["train_chars_per_s"] > 0
    assert [h["step"] for h in metrics["history"]] == [3, 6]
    assert metrics["config"]["seed"] == 7 and metrics["config"]["corpus"] == str(FIXTURE_CORPUS)
    from rag_server.documents import corpus_checksum

    assert loaded.corpus_checksum == corpus_checksum([FIXTURE_CORPUS])
    assert loaded.block_size == 256
    assert isinstance(loaded.complete("Question: x?\nContext:\n(no passages)\nAnswer:", max_new_chars=5), str)


def test_the_shipped_recipe_describes_the_shipped_checkpoint() -> None:
    recipe = TrainConfig.from_file(SHIPPED_RECIPE)
    shipped = torch.load(PACKAGED_CHECKPOINT, map_location="cpu", weights_only=True)
    args, metrics = shipped["model_args"], shipped["metrics"]
    assert (args["n_layer"], args["n_head"], args["n_embd"], args["block_size"]) == (
        recipe.n_layer,
        recipe.n_head,
        recipe.n_embd,
        recipe.block_size,
    )
    assert (metrics["batch_size"], metrics["lr"], metrics["seed"]) == (recipe.batch_size, recipe.lr, recipe.seed)
    assert metrics["synthetic_ratio"] == recipe.synthetic_ratio and metrics["stored_as"] == "float16" and recipe.half
    assert Path(recipe.out) == PACKAGED_CHECKPOINT.relative_to(Path(__file__).resolve().parents[1])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2]", "a recipe is a JSON object"),
        ("{not json", "cannot read the recipe"),
        ('{"stepz": 3}', "unknown option 'stepz'"),
        ('{"steps": "3"}', "steps must be a JSON int"),
        ('{"half": 1}', "half must be a JSON bool"),
        ('{"steps": true}', "steps must be a JSON int"),
        ('{"steps": 0}', "steps must be >= 1"),
    ],
)
def test_a_bad_recipe_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, problem: str
) -> None:
    recipe = tmp_path / "bad.json"
    recipe.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        TrainConfig.from_file(recipe)
    assert cli.main(["train", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {recipe}: ") and problem in err[0]


def test_calibrate_chooses_the_highest_threshold_that_answers_enough(built, tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    pipeline = RagPipeline(tmp_path / "indexes", encoder=fake_encoder)
    questions = EvalSet(
        "fixture",
        [
            EvalQuery("d1", "prazo para comunicar incidente de segurança", "pt", split="dev"),
            EvalQuery("d2", "consentimento do titular", "pt", split="dev"),
            EvalQuery("t1", "GPU memory partitioning", "en", split="test"),
        ],
        level="passage",
    )
    offtopic = [{"question": "receita de bolo de cenoura", "split": "dev"}, {"question": "football", "split": "test"}]
    result = calibrate(pipeline, "bm25", 3, 0.5, questions, offtopic)
    dev = result.splits[0]
    assert (dev.split, len(dev.in_domain), len(dev.off_topic)) == ("dev", 2, 1)
    # Answering half the dev questions allows the higher score (as a setting: rounded down).
    assert result.threshold == setting_for(max(dev.in_domain))
    assert dev.rates(result.threshold)[0] == 0.5
    strict = calibrate(pipeline, "bm25", 3, 1.0, questions, offtopic)
    assert strict.threshold == setting_for(min(strict.splits[0].in_domain))
    assert "threshold (chosen on dev)" in result.markdown() and "| test | 1 |" in result.markdown()
    # A given threshold is scored, not chosen (min_answered plays no part): above every in-domain
    # score, nothing is answered and every off-topic question is refused, and the report says so.
    above = max(dev.in_domain + dev.off_topic) + 1
    given = calibrate(pipeline, "bm25", 3, 1.0, questions, offtopic, threshold=above)
    assert given.threshold == above and not given.chosen
    report = given.markdown()
    assert "| dev | 2 |" in report and "| 0.0% | 100.0% |" in report
    assert f"threshold (given): {above:.4f}" in report and "chosen on dev" not in report
    with pytest.raises(ValueError, match="the test split needs in-domain and off-topic questions"):
        calibrate(pipeline, "bm25", 3, 0.5, questions, [offtopic[0]])


def test_the_chosen_setting_is_rounded_down_so_it_answers_what_the_threshold_answers() -> None:
    assert setting_for(0.8525117) == 0.8525 and setting_for(0.85) == 0.85
    for value in (0.0037, 0.12345678, 0.99999, float.fromhex("0x1.e5d9e83e425afp-1")):
        setting = setting_for(value)
        assert setting <= value and value - setting < 0.0002 and round(setting, 4) == setting


def test_calibrate_retrieves_as_many_passages_as_ask_does() -> None:
    from rag_server.cli import make_parser
    from rag_server.pipeline import DEFAULT_ASK_K

    assert make_parser().parse_args(["calibrate"]).k == DEFAULT_ASK_K


def test_tune_compares_the_variants_for_each_bm25_setting(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    grid = [BM25Params(1.5, 0.75), BM25Params(0.9, 0.4)]
    variants = [StrategySpec("bm25", "bm25"), StrategySpec("rrf", "hybrid")]
    runs = tune(str(FIXTURES / "beir"), "dev", grid, variants, encoder=fake_encoder, cache_dir=None, progress=False)
    assert [r.bm25 for r in runs] == grid
    assert [[s.name for s in r.comparison.results] for r in runs] == [["bm25", "rrf"]] * 2
    text = runs[1].markdown()
    assert text.startswith("### BM25 k1=0.9 b=0.4") and "| rrf |" in text and "Paired t-test" not in text
    with pytest.raises(InvalidParameterError, match="test split"):
        tune(str(FIXTURES / "beir"), "test", grid, variants)


def test_tune_sweeps_the_convex_share_of_bm25_and_shows_the_right_article_table(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from rag_server.evaluation.tuning import VARIANTS

    sweep = {s.name: s.options["weights"] for s in VARIANTS if re.fullmatch(r"convex-bm25\.\d", s.name)}
    assert list(sweep) == ["convex-bm25.3", "convex-bm25.4", "convex-bm25.5", "convex-bm25.6", "convex-bm25.7"]
    assert all(abs(w["bm25"] + w["dense"] - 1) < 1e-9 for w in sweep.values())
    # The natural-question split is judged by article: its table comes with the metrics.
    [run] = tune(
        "natural",
        "dev",
        [BM25Params(1.5, 0.75)],
        [StrategySpec("bm25", "bm25")],
        encoder=fake_encoder,
        cache_dir=None,
        progress=False,
    )
    text = run.markdown()
    assert "| bm25 |" in text and "article in top 5" in text and "Paired t-test" not in text


def test_calibration_uses_every_question_set_and_labels_them() -> None:
    from rag_server.evaluation.calibration import labelled_questions

    for split in ("dev", "test"):
        labelled = labelled_questions(split)
        sources = {(q.source, q.in_domain) for q in labelled}
        assert sources == {
            ("project", True),
            ("natural", True),
            ("answers", True),
            ("answers, off-topic", False),
            ("offtopic", False),
        }
        assert len({q.text for q in labelled}) > 200
    dev, test = ({q.text for q in labelled_questions(s)} for s in ("dev", "test"))
    assert not dev & test  # a question never calibrates and checks at once
