"""The teaching lessons: their pure functions' values and the lines their scripts print."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest
import torch

from rag_server.teaching import LESSONS, char_bigram, keyword_rag, mlp_keras, mlp_torch, word_bigrams

FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "corpus"
# Small, repetitive text with a clear bigram structure: a few training steps already beat uniform.
SMALL_TEXT = "the controller keeps the data safe; the processor handles the data. " * 40


def printed_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_index_lists_every_lesson_module() -> None:
    import importlib

    for name in LESSONS:
        assert callable(importlib.import_module(f"rag_server.teaching.{name}").main)


# --------------------------------------------------------------------------- 1. word bigrams


def test_word_bigram_counts_and_probabilities() -> None:
    result = word_bigrams.word_bigrams()
    words = word_bigrams.SENTENCE.split()
    assert list(result.counts) == list(itertools.pairwise(words))  # order of first appearance
    assert set(result.counts.values()) == {1}
    assert result.probabilities == {pair: 1.0 for pair in result.counts}


def test_word_bigram_probabilities_normalise_per_first_word() -> None:
    result = word_bigrams.word_bigrams("a b a c a b")
    assert result.counts == {("a", "b"): 2, ("b", "a"): 1, ("a", "c"): 1, ("c", "a"): 1}
    assert list(result.counts) == [("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")]
    assert result.probabilities[("a", "b")] == pytest.approx(2 / 3)
    assert result.probabilities[("a", "c")] == pytest.approx(1 / 3)
    assert sum(p for (a, _), p in result.probabilities.items() if a == "a") == pytest.approx(1.0)


def test_word_bigrams_main(capsys: pytest.CaptureFixture[str]) -> None:
    word_bigrams.main()
    lines = printed_lines(capsys)
    assert lines[0] == "Bigrams:"
    assert lines[1:8] == [
        "(ai, helps): 1",
        "(helps, teams): 1",
        "(teams, make): 1",
        "(make, better): 1",
        "(better, decisions): 1",
        "(decisions, with): 1",
        "(with, data): 1",
    ]
    assert lines[8] == "Next-word probabilities:"
    assert lines[9] == "P(helps | ai) = 1.00"
    assert len(lines) == 16


# --------------------------------------------------------------------------- 2, 3. MLPs


def test_mlp_torch_forward_pass(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlp_torch.forward_pass()
    assert result.input_shape == (4, 3)
    assert result.output_shape == (4, 1)
    assert mlp_torch.forward_pass() == result  # seeded: the same numbers every call
    assert sum(p.numel() for p in mlp_torch.build_mlp().parameters()) == 21

    mlp_torch.main()
    assert printed_lines(capsys) == [
        "Input shape: (4, 3)",
        "Output shape: (4, 1)",
        f"First output: {result.first_output:.4f}",
    ]


def test_mlp_keras_forward_pass(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlp_keras.forward_pass()
    assert result.input_shape == (4, 3)
    assert result.output_shape == (4, 1)
    assert math.isfinite(result.first_output)
    assert mlp_keras.forward_pass() == result
    assert mlp_keras.build_mlp().count_params() == 21

    mlp_keras.main()
    lines = printed_lines(capsys)
    assert lines[:2] == ["Input shape: (4, 3)", "Output shape: (4, 1)"]
    assert re.fullmatch(r"First output: -?\d+\.\d{4}", lines[2])
    assert lines[2] == f"First output: {result.first_output:.4f}"


# --------------------------------------------------------------------------- 4. char bigram


def test_char_bigram_demo() -> None:
    demo = char_bigram.next_char_demo()
    assert demo.vocab == [" ", "e", "h", "l", "m", "o"]
    assert demo.last_token == "m"
    assert len(demo.probabilities) == 6
    assert sum(demo.probabilities) == pytest.approx(1.0, abs=1e-6)
    probs = [p for _, p in demo.top]
    assert len(demo.top) == 3 and probs == sorted(probs, reverse=True)
    for ch, p in demo.top:
        assert demo.probabilities[demo.vocab.index(ch)] == pytest.approx(p)
    assert char_bigram.next_char_demo() == demo


def test_load_corpus_text_strips_front_matter_and_skips_text_files() -> None:
    text = char_bigram.load_corpus_text(FIXTURE_CORPUS)
    assert not text.startswith("---")
    assert "\nid: " not in text and "title:" not in text
    assert "# GPU tenant isolation" in text
    assert "estatuto" not in text.lower()  # the .txt statute is not Markdown
    assert len(char_bigram.load_corpus_text(FIXTURE_CORPUS, max_chars=100)) == 100


@pytest.mark.slow  # trains on the corpus
def test_train_char_bigram_beats_uniform_and_is_seeded() -> None:
    model, vocab, bpc = char_bigram.train_char_bigram(SMALL_TEXT, steps=40, seed=0, batch_size=256)
    assert vocab == sorted(set(SMALL_TEXT))
    assert model.logits_table.weight.shape == (len(vocab), len(vocab))
    assert bpc < math.log2(len(vocab)) - 1.0
    again = char_bigram.train_char_bigram(SMALL_TEXT, steps=40, seed=0, batch_size=256)
    assert again[2] == bpc
    assert torch.equal(again[0].logits_table.weight, model.logits_table.weight)


def test_train_char_bigram_rejects_text_too_short_to_split() -> None:
    with pytest.raises(ValueError, match="too short"):
        char_bigram.train_char_bigram("abc", steps=1, seed=0)


def test_char_bigram_main(capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    char_bigram.main(["--corpus", str(FIXTURE_CORPUS), "--steps", "20", "--log-every", "10"])
    assert torch.get_num_threads() == threads  # the script's one-thread setting does not leak
    lines = printed_lines(capsys)
    assert lines[:3] == [
        "Vocab: [' ', 'e', 'h', 'l', 'm', 'o']",
        "Last input token: 'm'",
        "Top next-token probabilities:",
    ]
    assert all(re.fullmatch(r"'.': 0\.\d{4}", line) for line in lines[3:6])
    steps = [line for line in lines if line.startswith("step ")]
    assert [int(line.split()[1].rstrip(":")) for line in steps] == [0, 10, 20]
    train_losses = [float(re.search(r"train loss (\d+\.\d+)", line)[1]) for line in steps]  # type: ignore[index]
    assert train_losses[-1] < train_losses[0]
    bpc_line = next(line for line in lines if line.startswith("Validation bits/char:"))
    bpc, uniform = (float(v) for v in re.findall(r"\d+\.\d+", bpc_line))
    assert bpc < uniform


# --------------------------------------------------------------------------- 5. keyword RAG


def test_keyword_rag_ranks_the_third_document_first() -> None:
    result = keyword_rag.keyword_rag()
    assert result.scores == [1.0, 2.0, 5.0]  # lgpd | server, ai | run, ai, server, lgpd, compliance
    assert result.ranking == [2]
    assert result.top_document == keyword_rag.DOCUMENTS[2]
    assert result.prompt == (f"Question: {keyword_rag.QUESTION}\nContext: [1] {keyword_rag.DOCUMENTS[2]}\nAnswer:")
    assert keyword_rag.keyword_rag(k=3).ranking == [2, 1, 0]


def test_keyword_rag_without_a_match_has_no_context() -> None:
    result = keyword_rag.keyword_rag("zebra migration?")
    assert result.top_document is None
    assert "(no matching document)" in result.prompt


def test_keyword_rag_main(capsys: pytest.CaptureFixture[str]) -> None:
    keyword_rag.main()
    lines = printed_lines(capsys)
    assert lines[0] == "Query: How to run AI servers with LGPD compliance?"
    assert f"Top document: {keyword_rag.DOCUMENTS[2]}" in lines
    start = lines.index("Prompt preview:")
    assert lines[start + 1 :] == [
        "Question: How to run AI servers with LGPD compliance?",
        f"Context: [1] {keyword_rag.DOCUMENTS[2]}",
        "Answer:",
    ]


# --------------------------------------------------------------------------- 6. the bits/char ladder


def test_ladder_tokens_join_back_into_the_text() -> None:
    from rag_server.teaching import ladder

    text = " O controlador, em até 3 dias úteis: comunica a ANPD.\n"
    assert "".join(ladder.tokens(text)) == text
    assert ladder.tokens("a  b.") == ["a", "  ", "b", "."]


def test_ladder_word_bigram_is_a_distribution_and_prefers_seen_pairs() -> None:
    from rag_server.teaching import ladder

    model = ladder.WordBigram([" the data is safe\n", " the data is kept\n", " a processor\n"])
    # Over the seen words plus unseen spellings the mass can never exceed one.
    seen = sum(math.exp(model.logp("the", w)) for w in model.unigrams)
    assert 0.0 < seen < 1.0
    assert model.logp("the", "data") > model.logp("the", "safe") > model.logp("the", "zebra")
    assert math.isfinite(model.bits(" unseen words entirely\n"))


def test_ladder_rungs_on_held_out_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rag_server.generator.checkpoint import save_checkpoint
    from rag_server.generator.examples import corpus_vocab, load_passages
    from rag_server.generator.model import CharTransformer, GeneratorConfig
    from rag_server.teaching import ladder

    vocab = corpus_vocab(load_passages(FIXTURE_CORPUS))
    torch.manual_seed(0)
    model = CharTransformer(GeneratorConfig(vocab_size=len(vocab), block_size=384, n_layer=1, n_head=2, n_embd=16))
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", model, vocab, "checksum")

    rungs, n_chars = ladder.ladder(FIXTURE_CORPUS, checkpoint, examples=12)
    assert [r.name for r in rungs] == ["word bigram", "char bigram", "generator"]
    assert n_chars > 0
    # The untrained generator is close to a uniform guess over its vocabulary; the counted
    # bigrams know something.
    uniform = math.log2(len(vocab))
    assert rungs[2].bits_per_char == pytest.approx(uniform, abs=0.5)
    assert rungs[1].bits_per_char < uniform
    assert ladder.ladder(FIXTURE_CORPUS, tmp_path / "missing.pt", examples=12)[0][-1].name == "char bigram"

    ladder.main(["--corpus", str(FIXTURE_CORPUS), "--checkpoint", str(checkpoint), "--examples", "12"])
    lines = printed_lines(capsys)
    assert lines[0].startswith("Bits/char ladder on ")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["word bigram", "char bigram", "generator"]
    assert re.fullmatch(r"\s*char bigram: \d\.\d{3} bits/char \(1\.000x the char bigram\)", lines[2])
