"""Tensors for training and scoring the answer generator, made from :mod:`.examples`.

A batch holds each example's characters as inputs and the next characters as targets, with
only the answer's targets kept (the rest are ``IGNORE_INDEX``); :class:`BatchStream` makes
endless batches in ``DataLoader`` worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.nn import functional as F

from ..passage import Passage
from .examples import Example, ExampleBuilder, ExampleStream
from .model import IGNORE_INDEX
from .vocab import CharVocab


def collate(
    examples: Sequence[Example], vocab: CharVocab, device: torch.device | str = "cpu", length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch: inputs x (B, T) and targets y (B, T), T = the longest text minus one, or ``length``
    when given (fixed shapes let a compiled model reuse one graph).

    y is the next character wherever that character belongs to the answer part
    (``" <answer>\\n"``) and ``IGNORE_INDEX`` elsewhere: over the prompt (the model reads it, it is
    not asked to write it, so its capacity goes to copying) and over the right padding of shorter
    examples (padding comes after every real character, so causal attention never reads it).
    """
    encoded = [vocab.encode(e.text) for e in examples]
    T = max(len(ids) for ids in encoded) - 1
    if length is not None:
        if length < T:
            raise ValueError(f"an example needs {T} positions, more than length={length}")
        T = length
    x = torch.zeros(len(examples), T, dtype=torch.long)
    y = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    for row, (example, ids) in enumerate(zip(examples, encoded, strict=True)):
        n = len(ids) - 1
        x[row, :n] = torch.tensor(ids[:-1])
        y[row, :n] = torch.tensor(ids[1:])
        # Target j is character j + 1; the answer part starts at character len(prompt).
        y[row, : len(example.prompt) - 1] = IGNORE_INDEX
    return x.to(device), y.to(device)


@torch.no_grad()
def answer_nats(
    model: torch.nn.Module,
    examples: Sequence[Example],
    vocab: CharVocab,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> tuple[float, int]:
    """Mean cross-entropy of ``model`` in nats per answer character over ``examples`` (what
    training minimises and the bits/char figures report, divided by ln 2), and how many answer
    characters were scored. The caller sets eval mode and any autocast."""
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        x, y = collate(examples[start : start + batch_size], vocab, device)
        logits, _ = model(x)
        # float(): under bf16 autocast the logits are bf16; sum the loss in float32.
        total += F.cross_entropy(
            logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
        ).item()
        count += int((y != IGNORE_INDEX).sum())
    return (total / count if count else float("nan")), count


class BatchStream(torch.utils.data.IterableDataset):
    """Endless collated training batches ``(x, y, chars)`` for a ``DataLoader`` with worker processes.

    Making examples is pure Python (about a thousand a second per core), slower than a GPU eats
    them, so each worker runs its own ``ExampleStream``, seeded ``seed + worker id``: the same
    workers and seed give the same batches. ``chars`` is the number of characters read, padding
    excluded.
    """

    def __init__(
        self,
        passages: Sequence[Passage],
        vocab: CharVocab,
        block_size: int,
        batch_size: int,
        synthetic_ratio: float,
        seed: int,
        pad_to: int | None = None,
    ) -> None:
        self.passages = list(passages)
        self.vocab = vocab
        self.block_size = block_size
        self.batch_size = batch_size
        self.synthetic_ratio = synthetic_ratio
        self.seed = seed
        self.pad_to = pad_to

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        stream = ExampleStream(ExampleBuilder(self.passages, self.block_size), self.synthetic_ratio, self.seed + worker)
        while True:
            batch = stream.take(self.batch_size)
            x, y = collate(batch, self.vocab, length=self.pad_to)
            yield x, y, sum(len(e.text) - 1 for e in batch)
