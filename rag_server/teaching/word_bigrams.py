"""Lesson 1 — word bigrams: which word follows which, by counting.

A bigram model predicts the next word from the current word alone. Its parameters are counts:

1. Split the text into words ``w_1 … w_n`` (here: lower-cased, split on whitespace).
2. Count every adjacent pair::

       count(a, b) = #{i : w_i = a and w_{i+1} = b}          (n − 1 pairs in all)

3. Count how often each word *starts* a pair::

       count(a, ·) = Σ_b count(a, b)

4. The maximum-likelihood estimate of the next-word distribution is the ratio::

       P(b | a) = count(a, b) / count(a, ·)

   For every ``a`` these probabilities sum to 1. The last word starts no pair, so it gets no
   estimate; a real model adds an end-of-text token, and smoothing for pairs never seen.

In one short sentence of distinct words every pair occurs once, so every P(b | a) is 1.00: the model
has memorised the sentence and nothing more. Lesson 4 (``char_bigram``) builds the same kind of
model over characters and learns the table by gradient descent instead of counting.

Run: ``python -m rag_server.teaching.word_bigrams``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import NamedTuple

SENTENCE = "ai helps teams make better decisions with data"

Bigram = tuple[str, str]


class WordBigrams(NamedTuple):
    """Everything the lesson prints; both dicts are in order of each pair's first appearance."""

    counts: dict[Bigram, int]  # count(a, b)
    probabilities: dict[Bigram, float]  # P(b | a)


def words_of(text: str) -> list[str]:
    """The simplest tokenizer: lower-case, split on whitespace (punctuation would stay attached)."""
    return text.lower().split()


def count_bigrams(words: Sequence[str]) -> dict[Bigram, int]:
    """``count(a, b)`` for every adjacent pair. A plain dict keeps insertion order, which is exactly
    the order of first appearance (a ``Counter`` would too, but says less about why)."""
    counts: dict[Bigram, int] = {}
    for pair in pairwise(words):  # (w1, w2), (w2, w3), …: n − 1 pairs
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def next_word_probabilities(counts: dict[Bigram, int]) -> dict[Bigram, float]:
    """``P(b | a) = count(a, b) / count(a, ·)``, where ``count(a, ·)`` sums the row of ``a``."""
    starts: Counter[str] = Counter()
    for (first, _), count in counts.items():
        starts[first] += count
    return {(a, b): count / starts[a] for (a, b), count in counts.items()}


def word_bigrams(text: str = SENTENCE) -> WordBigrams:
    """Counts and next-word probabilities of ``text`` — the values :func:`main` prints."""
    counts = count_bigrams(words_of(text))
    return WordBigrams(counts=counts, probabilities=next_word_probabilities(counts))


def main() -> None:
    result = word_bigrams()
    print("Bigrams:")
    for (a, b), count in result.counts.items():
        print(f"({a}, {b}): {count}")
    print("Next-word probabilities:")
    for (a, b), p in result.probabilities.items():
        print(f"P({b} | {a}) = {p:.2f}")


if __name__ == "__main__":
    main()
