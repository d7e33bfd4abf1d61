"""The character-level answer generator: model, KV cache, sampling, vocabulary, checkpoints, data, training."""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from rag_server.errors import InvalidParameterError, ModelError
from rag_server.generator import CharTransformer, CharVocab, Generator, GeneratorConfig, save_checkpoint
from rag_server.generator.batches import BatchStream, collate
from rag_server.generator.checkpoint import load_checkpoint
from rag_server.generator.examples import (
    ExampleBuilder,
    ExampleStream,
    build_examples,
    corpus_vocab,
    load_passages,
    split_passages,
)
from rag_server.generator.model import IGNORE_INDEX
from rag_server.generator.vocab import REPLACEMENT, UNK_ID
from rag_server.prompt import build_prompt, one_line
from rag_server.retrieval.base import Hit
from rag_server.sentences import split_sentences

FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "corpus"
TEXT = "Question: What is a GPU?\nContext:\n[1] (Guide) A GPU is a graphics processor.\nAnswer: 0123456789\n"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors run faster on one thread, and much faster when the other core is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(vocab_size: int, block_size: int = 16, seed: int = 0, n_layer: int = 2) -> CharTransformer:
    torch.manual_seed(seed)
    config = GeneratorConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=2, n_embd=32)
    return CharTransformer(config).eval()


@pytest.fixture
def vocab() -> CharVocab:
    return CharVocab.build([TEXT])


@pytest.fixture
def generator(vocab: CharVocab) -> Generator:
    return Generator(tiny_model(len(vocab), block_size=64), vocab, checkpoint_id="x", corpus_checksum="c" * 64)


# --------------------------------------------------------------------------- model


def test_forward_shapes_and_loss() -> None:
    model = tiny_model(vocab_size=11)
    idx = torch.randint(0, 11, (3, 10))
    logits, loss = model(idx)
    assert logits.shape == (3, 10, 11) and loss is None

    targets = torch.randint(0, 11, (3, 10))
    targets[:, :4] = IGNORE_INDEX  # masked positions carry no loss
    logits, loss = model(idx, targets)
    assert loss is not None and loss.dim() == 0
    # At initialisation the prediction is close to uniform: loss ≈ ln(V).
    assert abs(loss.item() - math.log(11)) < 0.3
    expected = torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 11), targets[:, 4:].reshape(-1))
    assert torch.allclose(loss, expected)

    assert model.lm_head.weight is model.wte.weight  # weight tying
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="multiple"):
        GeneratorConfig(vocab_size=10, n_embd=30, n_head=4)
    assert GeneratorConfig(vocab_size=10).block_size == 768


@pytest.mark.parametrize(("prompt_len", "new"), [(5, 30), (20, 12), (16, 1)])
def test_kv_cache_matches_recompute_greedy(prompt_len: int, new: int) -> None:
    """Same greedy output with and without the cache, including past block_size (crop + re-prefill)."""
    for seed in range(3):
        model = tiny_model(vocab_size=13, block_size=16, seed=seed)
        idx = torch.randint(0, 13, (2, prompt_len), generator=torch.Generator().manual_seed(seed))
        cached = model.generate(idx, new, temperature=0.0, use_cache=True)
        recomputed = model.generate(idx, new, temperature=0.0, use_cache=False)
        assert cached.shape == (2, prompt_len + new)
        assert torch.equal(cached, recomputed)
        assert torch.equal(cached[:, :prompt_len], idx)


def test_kv_cache_logits_match_full_forward() -> None:
    """Decoding one character at a time against the cache gives the full forward's logits."""
    model = tiny_model(vocab_size=13, block_size=16)
    idx = torch.randint(0, 13, (2, 12))
    full, _ = model(idx)
    cache = model.new_cache(2)
    steps = [model.lm_head(model._hidden(idx[:, :5], cache))]
    for t in range(5, 12):
        steps.append(model.lm_head(model._hidden(idx[:, t : t + 1], cache)))
    assert cache.length == 12
    # Several new characters at once after a past use the explicit, offset causal mask.
    cache = model.new_cache(2)
    model._hidden(idx[:, :8], cache)
    hidden = model._hidden(idx[:, 8:], cache)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    assert torch.allclose(model.lm_head(hidden), full[:, 8:], atol=1e-5)


def test_sampling_deterministic_under_seed() -> None:
    model = tiny_model(vocab_size=13)
    idx = torch.randint(0, 13, (1, 4))

    def sample(seed: int, use_cache: bool = True) -> list[int]:
        g = torch.Generator().manual_seed(seed)
        out = model.generate(idx, 40, temperature=1.5, top_k=6, generator=g, use_cache=use_cache)
        return out[0].tolist()

    assert sample(1) == sample(1)
    assert sample(1) == sample(1, use_cache=False)
    assert sample(1) != sample(2)
    # top_k=1 leaves one candidate: sampling is greedy whatever the temperature.
    greedy = model.generate(idx, 20, temperature=0.0)
    top1 = model.generate(idx, 20, temperature=2.0, top_k=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(greedy, top1)


def test_top_k_restricts_choices() -> None:
    model = tiny_model(vocab_size=13)
    idx = torch.randint(0, 13, (1, 4))
    logits = model.lm_head(model._hidden(idx)[:, -1])
    allowed = set(torch.topk(logits, 3).indices[0].tolist())
    g = torch.Generator().manual_seed(0)
    firsts = {model.generate(idx, 1, temperature=5.0, top_k=3, generator=g)[0, -1].item() for _ in range(50)}
    assert firsts <= allowed and len(firsts) > 1


def test_generate_stop_sequence_and_arguments() -> None:
    model = tiny_model(vocab_size=13)
    idx = torch.randint(0, 13, (1, 3))
    free = model.generate(idx, 30, temperature=0.0)[0, 3:].tolist()
    stop = free[4:6]
    first = next(i for i in range(len(free) - 1) if free[i : i + 2] == stop)
    stopped = model.generate(idx, 30, temperature=0.0, stop=stop)[0, 3:].tolist()
    assert stopped == free[: first + 2]  # up to and including the stop sequence
    assert torch.equal(model.generate(idx, 0), idx)
    with pytest.raises(ValueError):
        model.generate(idx, 5, temperature=-1.0)
    with pytest.raises(ValueError):
        model.generate(idx, 5, top_k=0)
    # The model is where generation settings are checked: wrong types are refused as clearly.
    for bad in ({"max_new_tokens": True}, {"max_new_tokens": 2.5}, {"temperature": "0.5"}, {"top_k": True}):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            model.generate(idx, **{"max_new_tokens": 5, **bad})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- vocabulary and facade


def test_vocab_unknown_characters_and_json(vocab: CharVocab) -> None:
    ids = vocab.encode("GPU☃?")
    assert len(ids) == 5 and ids[3] == UNK_ID and UNK_ID not in ids[:3]
    assert vocab.decode(ids) == f"GPU{REPLACEMENT}?"
    assert vocab.decode(vocab.encode(TEXT)) == TEXT
    assert CharVocab.from_json(vocab.to_json()) == vocab
    assert all(isinstance(ch, str) for ch in vocab.to_json())
    with pytest.raises(ValueError):
        CharVocab.from_json(["a", "b"])  # no <unk> first
    with pytest.raises(ValueError):
        CharVocab.from_json(["<unk>", "ab"])
    with pytest.raises(ValueError):
        vocab.decode([len(vocab)])


def test_complete_unknown_characters_cap_and_stop(generator: Generator) -> None:
    prompt = "Question: ☃ émoji 🚀?\nAnswer:"  # characters the vocabulary has never seen
    raw = generator.complete(prompt, max_new_chars=25, stop=None)
    assert len(raw) == 25
    assert generator.complete(prompt, max_new_chars=7, stop=None) == raw[:7]
    assert generator.complete(prompt, max_new_chars=0) == ""
    # Stop at a string the greedy output contains: the completion ends just before it.
    stop = next(raw[i : i + 2] for i in range(3, 20) if REPLACEMENT not in raw[i : i + 2])
    assert generator.complete(prompt, max_new_chars=25, stop=stop) == raw[: raw.index(stop)]
    assert len(generator.complete(prompt, max_new_chars=25)) <= 25  # default stop "\n"
    with pytest.raises(InvalidParameterError):
        generator.complete("", max_new_chars=5)
    with pytest.raises(InvalidParameterError):
        generator.complete(prompt, max_new_chars=-1)
    with pytest.raises(InvalidParameterError):
        generator.complete(prompt, temperature=-0.5)
    with pytest.raises(InvalidParameterError):
        generator.complete(prompt, stop="☃")


def test_complete_seeded_sampling_is_reproducible(generator: Generator) -> None:
    prompt = "Question: What is a GPU?\nAnswer:"
    one = generator.complete(prompt, max_new_chars=40, temperature=1.0, top_k=10, seed=7, stop=None)
    assert one == generator.complete(prompt, max_new_chars=40, temperature=1.0, top_k=10, seed=7, stop=None)
    assert one != generator.complete(prompt, max_new_chars=40, temperature=1.0, top_k=10, seed=8, stop=None)
    long_prompt = prompt * 5  # longer than block_size (64): the oldest characters are cropped
    assert len(generator.complete(long_prompt, max_new_chars=10, stop=None)) == 10


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path: Path, generator: Generator) -> None:
    path = save_checkpoint(tmp_path / "sub" / "g.pt", generator.model, generator.vocab, "c" * 64, {"val_bpc": 1.5})
    loaded = Generator.load(path)
    assert loaded.checkpoint_id == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert loaded.corpus_checksum == "c" * 64
    assert loaded.metrics == {"val_bpc": 1.5}
    assert loaded.vocab == generator.vocab
    assert loaded.model.config == generator.model.config
    assert loaded.model.lm_head.weight is loaded.model.wte.weight  # tying survives loading
    for name, tensor in generator.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name])
    prompt = "Question: What is a GPU?\nAnswer:"
    assert loaded.complete(prompt, max_new_chars=30, stop=None) == generator.complete(
        prompt, max_new_chars=30, stop=None
    )
    # Plain data only: the file loads with weights_only=True and holds no custom objects.
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["version"] == 1 and isinstance(raw["vocab"], list) and isinstance(raw["model_args"], dict)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", raw["trained_at"])
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left behind
    with pytest.raises(ValueError, match="plain data"):
        save_checkpoint(tmp_path / "bad.pt", generator.model, generator.vocab, "c", {"x": object()})


def test_half_checkpoint_is_smaller_and_loads_as_float32(tmp_path: Path, generator: Generator) -> None:
    full = save_checkpoint(tmp_path / "full.pt", generator.model, generator.vocab, "c" * 64)
    half = save_checkpoint(
        tmp_path / "half.pt", generator.model, generator.vocab, "c" * 64, half=True, trained_at="2026-01-02T03:04:05"
    )
    assert half.stat().st_size < 0.7 * full.stat().st_size
    raw = load_checkpoint(half)
    assert raw.trained_at == "2026-01-02T03:04:05"
    assert {t.dtype for t in raw.state_dict.values()} == {torch.float16}
    # The tied matrix is stored once, under both names.
    assert raw.state_dict["wte.weight"].data_ptr() == raw.state_dict["lm_head.weight"].data_ptr()
    loaded = Generator.load(half)
    assert loaded.model.lm_head.weight is loaded.model.wte.weight
    for name, tensor in generator.model.state_dict().items():
        assert loaded.model.state_dict()[name].dtype == torch.float32
        assert torch.allclose(loaded.model.state_dict()[name], tensor, rtol=1e-3, atol=1e-4)


def _saved(tmp_path: Path, generator: Generator) -> Path:
    return save_checkpoint(tmp_path / "g.pt", generator.model, generator.vocab, "c" * 64, {})


def test_missing_checkpoint_names_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(ModelError, match="not found") as err:
        Generator.load(path)
    assert str(path) in str(err.value)


def test_truncated_checkpoint_names_file(tmp_path: Path, generator: Generator) -> None:
    path = _saved(tmp_path, generator)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError) as err:
        Generator.load(path)
    assert str(path) in str(err.value)
    path.write_bytes(b"")
    with pytest.raises(ModelError, match=re.escape(str(path))):
        Generator.load(path)


def test_wrong_vocab_size_names_file(tmp_path: Path, generator: Generator) -> None:
    path = _saved(tmp_path, generator)
    raw = torch.load(path, weights_only=True)
    raw["vocab"] = raw["vocab"][:-1]
    torch.save(raw, path)
    with pytest.raises(ModelError, match="vocabulary size mismatch") as err:
        Generator.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda raw: raw.pop("state_dict"), "missing keys"),
        (lambda raw: raw.update(version=2), "version"),
        (lambda raw: raw["model_args"].update(n_embd=64), "does not fit"),
        (lambda raw: raw["model_args"].update(colour="red"), "unknown keys"),
        (lambda raw: raw["state_dict"].pop("h.0.attn.c_attn.weight"), "does not fit"),
        (lambda raw: raw.update(vocab="abc"), "bad vocab"),
    ],
)
def test_bad_checkpoint_contents(
    tmp_path: Path, generator: Generator, change: Callable[[dict[str, Any]], object], problem: str
) -> None:
    path = _saved(tmp_path, generator)
    raw = torch.load(path, weights_only=True)
    change(raw)
    torch.save(raw, path)
    with pytest.raises(ModelError, match=problem) as err:
        Generator.load(path)
    assert str(path) in str(err.value)


class _Custom:
    pass


def test_pickled_objects_are_refused(tmp_path: Path, generator: Generator) -> None:
    path = _saved(tmp_path, generator)
    raw = torch.load(path, weights_only=True)
    raw["metrics"] = {"obj": _Custom()}
    torch.save(raw, path)  # a full pickle: weights_only loading must refuse it, not run it
    with pytest.raises(ModelError, match=re.escape(str(path))):
        load_checkpoint(path)


# --------------------------------------------------------------------------- training


def test_tiny_training_run_lowers_loss() -> None:
    """A toy copy task ("abcde|abcde\\n"), loss on the copied part only: a few dozen steps help."""
    letters = "abcdefgh"
    vocab = CharVocab.build([letters + "|\n"])
    rng = random.Random(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = []
        for _ in range(n):
            word = "".join(rng.choice(letters) for _ in range(6))
            rows.append(vocab.encode(f"{word}|{word}\n"))
        data = torch.tensor(rows)
        x, y = data[:, :-1], data[:, 1:].clone()
        y[:, :6] = IGNORE_INDEX  # the word itself is random: only its copy can be learned
        return x, y

    model = tiny_model(len(vocab), block_size=16, n_layer=2).train()
    optimizer = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2)
    x_val, y_val = batch(64)
    with torch.no_grad():
        before = model(x_val, y_val)[1]
    for _ in range(60):
        x, y = batch(32)
        _, loss = model(x, y)
        assert loss is not None
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model(x_val, y_val)[1]
    assert before is not None and after is not None
    assert after.item() < 0.7 * before.item()


# --------------------------------------------------------------------------- data

_NUMBERED = re.compile(r"\[(\d)\] \((.*?)\) (.+)")


def test_examples_use_build_prompt_format_with_answer_in_context() -> None:
    passages = load_passages(FIXTURE_CORPUS)
    examples = build_examples(passages, 40, block_size=384, synthetic_ratio=0.5, seed=3)
    assert {e.synthetic for e in examples} == {True, False}
    for example in examples:
        assert example.text == f"{example.prompt} {example.answer}\n"
        assert len(example.text) <= 384 + 1  # fits the model's window, answer included
        hits = [Hit(rank=i, score=1.0, passage=p) for i, p in enumerate(example.passages, start=1)]
        assert example.prompt == build_prompt(example.question, hits, budget=10_000).text
        lines = example.prompt.split("\n")
        assert lines[0] == f"Question: {example.question}" and lines[1] == "Context:" and lines[-1] == "Answer:"
        numbered = [_NUMBERED.fullmatch(line) for line in lines[2:-1]]  # one sentence a line
        numbers = [int(m.group(1)) for m in numbered if m]
        assert all(numbered) and 1 <= len(example.passages) <= 3
        assert list(dict.fromkeys(numbers)) == list(range(1, len(example.passages) + 1))
        assert sum(example.answer in m.group(3) for m in numbered if m) >= 1  # the answer is copied, not invented
        assert "\n" not in example.answer and example.answer == one_line(example.answer)
        # The question shares words with the answer: that is how the right sentence is found.
        # (Keywords may be cut to a stem of at least 5 letters, or capitalised.)
        asked = re.findall(r"\w+", example.question.split(" about ")[-1].split(" sobre ")[-1].lower())
        answer_words = re.findall(r"\w+", example.answer.lower())
        assert any(a.startswith(q) for q in asked if len(q) >= 4 for a in answer_words)
        if not example.synthetic:
            assert any(example.answer in one_line(p.text) for p in passages)


def test_examples_are_deterministic_and_mix_is_configurable() -> None:
    passages = load_passages(FIXTURE_CORPUS)
    first = build_examples(passages, 20, block_size=512, synthetic_ratio=0.5, seed=1)
    assert first == build_examples(passages, 20, block_size=512, synthetic_ratio=0.5, seed=1)
    assert first != build_examples(passages, 20, block_size=512, synthetic_ratio=0.5, seed=2)
    assert all(e.synthetic for e in build_examples(passages, 10, block_size=512, synthetic_ratio=1.0))
    assert not any(e.synthetic for e in build_examples(passages, 10, block_size=512, synthetic_ratio=0.0))
    with pytest.raises(ValueError):
        ExampleStream(ExampleBuilder(passages, 512), synthetic_ratio=1.5, seed=0)
    train, val = split_passages(passages, 0.2, seed=0)
    assert len(val) >= 2 and not {p.id for p in train} & {p.id for p in val}
    assert len(train) + len(val) == len(passages)


def test_collate_masks_the_prompt() -> None:
    passages = load_passages(FIXTURE_CORPUS)
    vocab = corpus_vocab(passages)
    examples = build_examples(passages, 3, block_size=384, seed=0)
    x, y = collate(examples, vocab)
    assert x.shape == y.shape == (3, max(len(e.text) for e in examples) - 1)
    for row, example in enumerate(examples):
        kept = y[row][y[row] != IGNORE_INDEX].tolist()
        assert vocab.decode(kept) == f" {example.answer}\n"  # loss on the answer characters only
        assert vocab.decode(x[row, : len(example.text) - 1].tolist()) == example.text[:-1]
        assert UNK_ID not in vocab.encode(example.text)


def test_collate_pads_to_a_fixed_length_and_refuses_too_short() -> None:
    passages = load_passages(FIXTURE_CORPUS)
    vocab = corpus_vocab(passages)
    examples = build_examples(passages, 3, block_size=384, seed=0)
    x, y = collate(examples, vocab, length=384)
    assert x.shape == y.shape == (3, 384)
    assert (y[:, max(len(e.text) for e in examples) - 1 :] == IGNORE_INDEX).all()  # padding carries no loss
    with pytest.raises(ValueError, match="length"):
        collate(examples, vocab, length=10)


def test_batch_stream_is_seeded_per_worker_and_counts_characters() -> None:
    passages = load_passages(FIXTURE_CORPUS)
    vocab = corpus_vocab(passages)

    def first(seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return next(iter(BatchStream(passages, vocab, 384, 4, 0.9, seed, pad_to=384)))

    x, y, chars = first(0)
    assert x.shape == y.shape == (4, 384)
    # Outside a DataLoader it is worker 0: the stream seeded ``seed``, characters read without padding.
    expected = ExampleStream(ExampleBuilder(passages, 384), 0.9, 0).take(4)
    assert chars == sum(len(e.text) - 1 for e in expected)
    assert torch.equal(x, collate(expected, vocab, length=384)[0])
    same, other = first(0), first(1)
    assert torch.equal(same[0], x) and same[2] == chars
    assert not torch.equal(other[0], x)


def test_sentences_are_exact_substrings_and_skip_abbreviations() -> None:
    text = 'O art. 7º trata do consentimento. See Art. 9 § 1º (LGPD Art. 9). Is it clear? "Yes." Done'
    parts = split_sentences(text)
    assert parts == [
        "O art. 7º trata do consentimento.",
        "See Art. 9 § 1º (LGPD Art. 9).",
        "Is it clear?",
        '"Yes."',
        "Done",
    ]
    assert " ".join(parts) == text


@pytest.mark.parametrize(("prompt_len", "new", "lookup"), [(5, 40, 4), (12, 30, 8), (3, 60, 32), (16, 1, 8)])
def test_prompt_lookup_matches_plain_greedy(prompt_len: int, new: int, lookup: int) -> None:
    """Prompt-lookup drafting changes how many passes run, never what greedy decoding outputs: also
    past block_size (crop and re-prefill) and with drafts that run into the window's end."""
    accepted_somewhere = False
    for seed in range(4):
        model = tiny_model(vocab_size=7, block_size=16, seed=seed).double()
        # A repetitive prompt over a small vocabulary: drafts are often right, sometimes wrong.
        idx = torch.randint(0, 3, (1, prompt_len), generator=torch.Generator().manual_seed(seed)).repeat(1, 2)[:, :16]
        plain = model.generate(idx, new, temperature=0.0)
        fast = model.generate(idx, new, temperature=0.0, lookup=lookup)
        assert torch.equal(fast, plain)
        accepted_somewhere |= bool(CharTransformer._draft("".join(map(chr, plain[0].tolist())), 3))
    assert accepted_somewhere


def test_a_prefix_memo_reuses_the_shared_positions_and_changes_no_output() -> None:
    """Completions of one prompt with other openings (and a prompt past the window) give what
    plain greedy decoding gives, while the memo saves the shared positions' work."""
    from rag_server.generator.model import PrefixMemo

    model = tiny_model(vocab_size=7, block_size=24, seed=3).double()
    memo = PrefixMemo()
    fed: list[int] = []
    hidden = model._hidden

    def counting(idx: torch.Tensor, cache=None):  # type: ignore[no-untyped-def]
        fed.append(idx.size(1))
        return hidden(idx, cache)

    model._hidden = counting  # type: ignore[method-assign]
    prompt = [1, 2, 3, 4, 1, 2, 5, 6, 1, 2, 3]
    # (opening, ids the first pass feeds): the first prompt is prefilled whole; the next ones share
    # all but their last id with the window before; one past the window (26 > 24) is cropped, as
    # plain decoding does, and prefilled whole again.
    cases = [([], 11), ([4], 1), ([4, 1], 1), ([5], 1), ([2] * 15, 24)]
    for opening, first_pass in cases:
        idx = torch.tensor([prompt + opening])
        plain = model.generate(idx, 8, temperature=0.0)
        fed.clear()
        reused = model.generate(idx, 8, temperature=0.0, lookup=4, memo=memo)
        assert torch.equal(reused, plain), opening
        assert fed[0] == first_pass, opening
    assert memo.cache is not None and len(memo.ids) == 24


def test_prompt_lookup_stops_like_plain_greedy() -> None:
    model = tiny_model(vocab_size=7, block_size=32, seed=1).double()
    idx = torch.tensor([[1, 2, 3, 1, 2, 3, 4]])
    full = model.generate(idx, 20, temperature=0.0)[0, 7:].tolist()
    stop = [full[5]]  # a token the plain decoder produces: both must stop at its first occurrence
    plain = model.generate(idx, 20, temperature=0.0, stop=stop)
    fast = model.generate(idx, 20, temperature=0.0, stop=stop, lookup=6)
    assert torch.equal(fast, plain)
    assert fast[0, -1].item() == stop[0]


def test_prompt_lookup_draft_copies_what_followed() -> None:
    text = "".join(map(chr, [5, 6, 7, 8, 9, 1, 5, 6]))
    assert CharTransformer._draft(text, 3) == [7, 8, 9]  # "5 6" was followed by 7 8 9
    assert CharTransformer._draft(text, 10) == [7, 8, 9, 1, 5, 6]
    assert CharTransformer._draft(chr(4), 3) == []
    with pytest.raises(ValueError, match="lookup"):
        tiny_model(vocab_size=7).generate(torch.tensor([[1]]), 3, lookup=-1)


def test_load_generator_reads_a_setting(tmp_path: Path, generator: Generator) -> None:
    from rag_server.generator import load_generator
    from rag_server.generator.paths import PACKAGED_CHECKPOINT

    for off in ("none", "None", " NONE ", ""):
        assert load_generator(off) is None
    packaged = load_generator(None)
    assert packaged is not None
    assert packaged.checkpoint_id == hashlib.sha256(PACKAGED_CHECKPOINT.read_bytes()).hexdigest()[:12]
    path = _saved(tmp_path, generator)
    loaded = load_generator(str(path))
    assert loaded is not None and loaded.vocab == generator.vocab
