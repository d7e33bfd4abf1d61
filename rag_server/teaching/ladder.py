"""Lesson 6 — the bits/char ladder: three models scored on the same held-out text.

Each rung predicts the same characters, so their bits per character compare directly. The
held-out text is the answers of validation examples: passages held out of the generator's
training (``split_passages`` with the training seed), each example a question, a context and the
one context sentence that answers it (``rag_server/generator/examples.py``). A rung pays, in bits,
for every character of `` <answer>\\n``.

1. Word bigram (lesson 1, made a proper model). Text is split into tokens — words, runs of
   spaces, single punctuation marks — that join back into it exactly. Counting on the training
   passages' sentences gives::

       P(w | prev) = (count(prev, w) + β · P_uni(w)) / (count(prev, ·) + β)
       P_uni(w)    = (count(w) + γ · P_spell(w)) / (N + γ)
       P_spell(w)  = Π_ch p(ch) · p(end)      (a character unigram spells unseen words)

   Each level hands a share of its probability to the one below (interpolated smoothing), so a
   word never seen in training costs many bits but never infinitely many. bits/char =
   −Σ log2 P(token) / characters.
2. Char bigram (lesson 4): P(b | a) = (count(a, b) + α) / (count(a, ·) + αV), counted on the same
   training sentences.
3. The generator (``rag_server/generator``): a character transformer that reads the whole prompt
   — question and numbered context — before the answer. The answer is a sentence of that
   context, so once the model has learned to find and copy it, most characters cost almost
   nothing. The bigrams cannot see the prompt: that gap is what attention buys.

Run: ``python -m rag_server.teaching.ladder [--corpus DIR] [--checkpoint FILE]``
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from rag_server.errors import CorpusError, ModelError

if TYPE_CHECKING:
    from rag_server.generator import Generator
    from rag_server.generator.examples import Example

CORPUS_DIR = Path("corpus")
CHECKPOINT = Path(__file__).resolve().parent.parent / "generator" / "checkpoints" / "generator.pt"
SEED = 1337  # the training run's seed: the same held-out passages
VAL_FRACTION = 0.05
EXAMPLES = 200
BLOCK_SIZE = 768  # the examples' length limit without a checkpoint (the shipped model's window)
ALPHA = 0.1  # char bigram add-α
BETA = 2.0  # word bigram → unigram interpolation weight
GAMMA = 1.0  # unigram → spelling interpolation weight
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


class Rung(NamedTuple):
    name: str
    bits_per_char: float


def tokens(text: str) -> list[str]:
    """Words, whitespace runs and single punctuation marks; ``"".join(tokens(t)) == t``."""
    return _TOKEN.findall(text)


class WordBigram:
    """Interpolated word bigram → unigram → character spelling model (see the module docstring)."""

    def __init__(self, texts: Iterable[str], beta: float = BETA, gamma: float = GAMMA) -> None:
        self.beta, self.gamma = beta, gamma
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.prev: Counter[str] = Counter()
        self.unigrams: Counter[str] = Counter()
        chars: Counter[str] = Counter()
        words = 0
        for text in texts:
            toks = tokens(text)
            for prev, word in zip(["<s>", *toks], toks, strict=False):
                self.pairs[(prev, word)] += 1
                self.prev[prev] += 1
                self.unigrams[word] += 1
                chars.update(word)
                words += 1
        self.n = sum(self.unigrams.values())
        # Spelling: a character unigram with add-one smoothing over the characters seen plus one
        # for "any other", and an end-of-word probability of 1 / (mean token length + 1).
        total = sum(chars.values())
        self.char_logp = {ch: math.log((c + 1) / (total + len(chars) + 1)) for ch, c in chars.items()}
        self.other_logp = math.log(1 / (total + len(chars) + 1))
        self.end_p = words / (total + words)

    def spell_logp(self, word: str) -> float:
        return (
            sum(self.char_logp.get(ch, self.other_logp) for ch in word)
            + len(word) * math.log(1 - self.end_p)
            + math.log(self.end_p)
        )

    def logp(self, prev: str, word: str) -> float:
        """Natural log of P(word | prev)."""
        unigram = (self.unigrams[word] + self.gamma * math.exp(self.spell_logp(word))) / (self.n + self.gamma)
        return math.log((self.pairs[(prev, word)] + self.beta * unigram) / (self.prev[prev] + self.beta))

    def bits(self, text: str, prev: str = "<s>") -> float:
        """Total bits of ``text`` after the token ``prev``."""
        total = 0.0
        for word in tokens(text):
            total -= self.logp(prev, word) / math.log(2)
            prev = word
        return total


class CharBigram:
    def __init__(self, texts: Iterable[str], vocab_size: int, alpha: float = ALPHA) -> None:
        self.alpha, self.vocab_size = alpha, vocab_size
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.firsts: Counter[str] = Counter()
        for text in texts:
            for a, b in itertools.pairwise(text):
                self.pairs[(a, b)] += 1
                self.firsts[a] += 1

    def bits(self, text: str, prev: str) -> float:
        total = 0.0
        for ch in text:
            p = (self.pairs[(prev, ch)] + self.alpha) / (self.firsts[prev] + self.alpha * self.vocab_size)
            total -= math.log2(p)
            prev = ch
        return total


def generator_bits(gen: Generator, examples: Sequence[Example]) -> float:
    """Bits per answer character of ``gen`` on ``examples``."""
    from rag_server.generator.batches import answer_nats

    return answer_nats(gen.model, examples, gen.vocab)[0] / math.log(2)


def ladder(
    corpus: Path = CORPUS_DIR, checkpoint: Path | None = CHECKPOINT, examples: int = EXAMPLES, seed: int = SEED
) -> tuple[list[Rung], int]:
    """The rungs (a generator rung only when ``checkpoint`` exists) and the number of characters scored."""
    from rag_server.generator.examples import (
        ANSWER_PREFIX,
        STOP,
        ExampleBuilder,
        ExampleStream,
        corpus_vocab,
        load_passages,
        split_passages,
    )
    from rag_server.prompt import one_line
    from rag_server.sentences import split_sentences

    passages = load_passages(corpus)
    train, held_out = split_passages(passages, VAL_FRACTION, seed)
    gen = None
    if checkpoint is not None and checkpoint.exists():
        from rag_server.generator import Generator

        gen = Generator.load(checkpoint)
    val = ExampleStream(ExampleBuilder(held_out, gen.block_size if gen else BLOCK_SIZE), 0.0, seed + 1).take(examples)
    # The bigrams learn from the training passages' sentences, each as an answer is written.
    texts = [f"{ANSWER_PREFIX}{s}{STOP}" for p in train for s in split_sentences(one_line(p.text))]
    answers = [f"{ANSWER_PREFIX}{e.answer}{STOP}" for e in val]
    n_chars = sum(len(a) for a in answers)
    word = WordBigram(texts)
    char = CharBigram(texts, len(corpus_vocab(passages)))
    rungs = [
        Rung("word bigram", sum(word.bits(a) for a in answers) / n_chars),
        Rung("char bigram", sum(char.bits(a, prev=":") for a in answers) / n_chars),  # after "Answer:"
    ]
    if gen is not None:
        rungs.append(Rung("generator", generator_bits(gen, val)))
    return rungs, n_chars


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--examples", type=int, default=EXAMPLES)
    args = parser.parse_args(argv)
    try:
        rungs, n_chars = ladder(args.corpus, args.checkpoint, args.examples)
    except (CorpusError, ModelError, ValueError) as exc:
        raise SystemExit(f"ladder: {exc}") from None
    print(f"Bits/char ladder on {n_chars:,} held-out answer characters ({args.examples} validation examples):")
    base = rungs[1].bits_per_char  # the yardstick: the generator should need ≤ 0.6x the char bigram
    for rung in rungs:
        print(f"{rung.name:>12}: {rung.bits_per_char:.3f} bits/char ({rung.bits_per_char / base:.3f}x the char bigram)")
    if len(rungs) < 3:
        print(f"(no generator checkpoint at {args.checkpoint}: train one with rag-server train)")


if __name__ == "__main__":
    main()
