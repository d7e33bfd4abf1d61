"""Lesson 4 — a character bigram language model: a table of logits, trained with cross-entropy.

Part 1: the model, untrained
----------------------------
1. Vocabulary: the distinct characters of the text, sorted; ``V = len(vocab)``. For ``"hello llm"``
   that is ``[' ', 'e', 'h', 'l', 'm', 'o']``, V = 6. Each character is replaced by its index.
2. The model is one ``nn.Embedding(V, V)`` used as a table: row ``a`` holds the *logits*
   (unnormalised log-probabilities) of the character that follows character ``a``. The forward
   pass is a lookup: for a sequence ``x`` of T indices, ``logits = table[x]`` has shape (T, V).
3. Softmax turns a row of logits ``z`` into a distribution::

       p_j = exp(z_j) / Σ_k exp(z_k)

   Row ``t`` predicts the character after ``x_t``; the last row predicts what follows the text.
   With the random N(0, 1) initial weights that prediction is arbitrary — training gives it meaning.

Part 2: training on the corpus
------------------------------
4. Text: the Markdown documents under ``corpus/`` with their front matter removed (by the product's
   own parser), joined by blank lines and capped at 200k characters. The first 90 % is training
   text, the last 10 % validation: a contiguous split, so validation is text the model never saw.
5. Targets are the inputs shifted by one: inputs ``data[i]``, targets ``data[i + 1]``.
6. Loss: mean cross-entropy in nats over N (input, target) pairs::

       L = −(1/N) Σ_i log softmax(table[x_i])[y_i]

   Its gradient with respect to row ``a`` is ``(1/N) Σ_{i: x_i = a} (softmax(table[a]) − onehot(y_i))``,
   which is zero exactly when ``softmax(table[a])_b = count(a, b) / count(a, ·)``: gradient descent
   converges to the counting estimate of lesson 1. The script prints that estimate (add-α
   smoothed, α = 0.1) as a check; AdamW's small weight decay acts like a little smoothing too.
7. Optimiser: AdamW on random minibatches of positions (cheaper than the full text per step, and
   the noise does no harm); every ``log_every`` steps the loss on the full train and validation text.
8. Bits per character = L / ln 2: the average code length, in bits, of an ideal coder driven by the
   model. Guessing uniformly costs log2(V) bits; anything below that has been learned. This is the
   first rung of the bits/char ladder (char bigram → word bigram → transformer).

Run: ``python -m rag_server.teaching.char_bigram [--corpus DIR] [--steps N] [--max-chars N]``
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from rag_server.documents import iter_corpus_files, parse_markdown
from rag_server.errors import CorpusError

DEMO_TEXT = "hello llm"
CORPUS_DIR = Path("corpus")  # relative to the working directory, like the Makefile's CORPUS
MAX_CHARS = 200_000
TRAIN_FRACTION = 0.9
STEPS = 300
BATCH_SIZE = 8192
LEARNING_RATE = 0.1  # high for a network, right for a table whose rows are independent softmaxes
SEED = 42
LOG_EVERY = 50
SMOOTHING = 0.1  # add-α for the counting estimate; add-one over-flattens the rows of rare characters


class CharBigram(nn.Module):
    """A bigram language model: the logits of the next character depend only on the current one."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.logits_table = nn.Embedding(vocab_size, vocab_size)  # row a: logits of what follows a

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(T,) or (B, T) character indices → (…, V) logits of the next character."""
        return self.logits_table(idx)


# --------------------------------------------------------------------------- vocabulary


def build_vocab(text: str) -> list[str]:
    """The distinct characters of ``text``, sorted, so index i always means the same character."""
    return sorted(set(text))


def encode(text: str, vocab: Sequence[str]) -> torch.Tensor:
    """Characters → int64 indices (a KeyError names a character outside the vocabulary)."""
    stoi = {ch: i for i, ch in enumerate(vocab)}
    return torch.tensor([stoi[ch] for ch in text], dtype=torch.long)


# --------------------------------------------------------------------------- part 1


class NextCharDemo(NamedTuple):
    """What part 1 prints."""

    vocab: list[str]
    last_token: str
    probabilities: list[float]  # P(next = vocab[j] | last token), sums to 1
    top: list[tuple[str, float]]  # the top_k (character, probability), most likely first


def next_char_demo(text: str = DEMO_TEXT, seed: int = SEED, top_k: int = 3) -> NextCharDemo:
    """Untrained bigram on ``text``: softmax of the last token's row of logits, and its top ``top_k``."""
    vocab = build_vocab(text)
    torch.manual_seed(seed)  # the table's N(0, 1) weights are the only randomness
    model = CharBigram(len(vocab))
    x = encode(text, vocab)  # (T,)
    with torch.no_grad():
        logits = model(x)  # (T, V): row t scores the character after x[t]
        probs = F.softmax(logits[-1], dim=-1)  # (V,): what follows the last character?
    best = torch.topk(probs, k=min(top_k, len(vocab)))
    top = [(vocab[int(i)], float(p)) for p, i in zip(best.values, best.indices, strict=True)]
    return NextCharDemo(vocab=vocab, last_token=text[-1], probabilities=probs.tolist(), top=top)


# --------------------------------------------------------------------------- part 2: data


def load_corpus_text(corpus_dir: Path = CORPUS_DIR, max_chars: int = MAX_CHARS) -> str:
    """Bodies of the Markdown documents under ``corpus_dir`` (front matter removed, README/FORMAT
    notes skipped), in the loader's stable file order, joined by blank lines, first ``max_chars``."""
    bodies: list[str] = []
    total = 0
    for path in iter_corpus_files(corpus_dir):
        if path.suffix.lower() != ".md":
            continue
        raw = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        body = parse_markdown(raw, path, path.name).text.strip()
        bodies.append(body)
        total += len(body) + 2
        if total >= max_chars:  # no need to read files past the cap
            break
    if not bodies:
        raise ValueError(f"no Markdown documents under {corpus_dir}")
    return "\n\n".join(bodies)[:max_chars]


class CharData(NamedTuple):
    vocab: list[str]
    train: torch.Tensor  # (N_train,) int64
    val: torch.Tensor  # (N_val,) int64


def prepare_data(text: str, train_fraction: float = TRAIN_FRACTION) -> CharData:
    """Vocabulary of the whole text (so validation has no unknown characters), then a contiguous
    split: the first ``train_fraction`` for training, the rest for validation."""
    vocab = build_vocab(text)
    data = encode(text, vocab)
    n_train = int(train_fraction * len(data))
    train, val = data[:n_train], data[n_train:]
    if len(train) < 2 or len(val) < 2:
        raise ValueError(f"text of {len(text)} characters is too short to split into train and validation")
    return CharData(vocab=vocab, train=train, val=val)


# --------------------------------------------------------------------------- part 2: training


@torch.no_grad()
def cross_entropy(model: nn.Module, data: torch.Tensor) -> float:
    """Mean cross-entropy, in nats, of predicting ``data[i + 1]`` from ``data[i]`` over all of ``data``."""
    return float(F.cross_entropy(model(data[:-1]), data[1:]))


def bits_per_char(model: nn.Module, data: torch.Tensor) -> float:
    """Cross-entropy converted from nats to bits: divide by ln 2."""
    return cross_entropy(model, data) / math.log(2)


def train_char_bigram(
    text: str,
    steps: int = STEPS,
    seed: int = SEED,
    *,
    batch_size: int = BATCH_SIZE,
    lr: float = LEARNING_RATE,
    train_fraction: float = TRAIN_FRACTION,
    log_every: int = 0,
) -> tuple[CharBigram, list[str], float]:
    """Train a :class:`CharBigram` on the first ``train_fraction`` of ``text`` with AdamW.

    Returns ``(model, vocab, validation bits/char)``. Deterministic for a given ``seed``: it seeds
    the weights and a private generator for the minibatch positions. With ``log_every > 0`` it
    prints the full train and validation losses every ``log_every`` steps and after the last one.
    """
    vocab, train, val = prepare_data(text, train_fraction)
    torch.manual_seed(seed)
    model = CharBigram(len(vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(seed)  # private: training does not disturb other draws

    def log(step: int) -> None:
        train_loss, val_loss = cross_entropy(model, train), cross_entropy(model, val)
        print(f"step {step:4d}: train loss {train_loss:.4f}, val loss {val_loss:.4f} nats")

    for step in range(steps):
        if log_every and step % log_every == 0:
            log(step)
        # Random positions i; the pair (train[i], train[i + 1]) is one training example.
        ix = torch.randint(0, len(train) - 1, (batch_size,), generator=batches)
        loss = F.cross_entropy(model(train[ix]), train[ix + 1])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if log_every:
        log(steps)
    return model, vocab, bits_per_char(model, val)


def count_bigram_bits_per_char(text: str, alpha: float = SMOOTHING, train_fraction: float = TRAIN_FRACTION) -> float:
    """The closed-form answer training approaches: P(b | a) = (count(a, b) + α) / (count(a, ·) + αV)
    from the training pairs (add-α smoothing keeps unseen pairs finite), scored on validation."""
    vocab, train, val = prepare_data(text, train_fraction)
    counts = torch.full((len(vocab), len(vocab)), alpha)
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
    log_probs = (counts / counts.sum(dim=1, keepdim=True)).log()
    return float(-log_probs[val[:-1], val[1:]].mean()) / math.log(2)


# --------------------------------------------------------------------------- script


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="directory of Markdown documents")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS, help="characters of corpus text to use")
    parser.add_argument("--steps", type=int, default=STEPS, help="AdamW steps")
    parser.add_argument("--log-every", type=int, default=LOG_EVERY, help="print the losses every N steps")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    # One thread: a (V, V) table and 8192-row batches are too small to gain from intra-op threads,
    # and on a busy 2-core machine the threads waiting on each other made training ~10x slower.
    # Restored afterwards, because a caller (a test, the ladder) may share this process.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run(args.corpus, args.max_chars, args.steps, args.seed, args.log_every)
    finally:
        torch.set_num_threads(threads)


def _run(corpus: Path, max_chars: int, steps: int, seed: int, log_every: int) -> None:
    """Part 1 on the demo text, then part 2 on the corpus."""
    demo = next_char_demo()
    print(f"Vocab: {demo.vocab}")
    print(f"Last input token: {demo.last_token!r}")
    print("Top next-token probabilities:")
    for ch, p in demo.top:
        print(f"{ch!r}: {p:.4f}")

    try:
        text = load_corpus_text(corpus, max_chars)
    except (CorpusError, ValueError) as exc:  # e.g. run from outside the repository: say so, no traceback
        raise SystemExit(f"char_bigram: {exc} (run from the repository root, or pass --corpus DIR)") from None
    print()
    print(
        f"Training on {len(text):,} characters of {corpus} (V = {len(build_vocab(text))}, 90/10 train/validation split)"
    )
    _, vocab, bpc = train_char_bigram(text, steps, seed, log_every=log_every)
    print(f"Validation bits/char: {bpc:.3f} (uniform guess: log2(V) = {math.log2(len(vocab)):.3f})")
    counted = count_bigram_bits_per_char(text, SMOOTHING)
    print(f"Counting estimate (add-{SMOOTHING:g} smoothing): {counted:.3f} bits/char")


if __name__ == "__main__":
    main()
