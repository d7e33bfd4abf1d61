"""The generator's alphabet: one id per character seen in training, and id 0 for everything else."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

UNK = "<unk>"
"""Name of id 0 in the JSON form: the id every character outside the vocabulary maps to."""

UNK_ID = 0

REPLACEMENT = "\ufffd"
"""What ``decode`` writes for ``UNK_ID``: one character, so decoded text stays one char per id."""


class CharVocab:
    """Characters ↔ ids. Id 0 is reserved for unknown characters; the others follow in sorted order.

    Exactly one id per character, in both directions (no normalisation), so ``len(encode(s)) ==
    len(s)``: the training code relies on it to find where an answer starts.
    """

    def __init__(self, chars: Sequence[str]) -> None:
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"vocabulary entries must be single characters, got {ch!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary has repeated characters")
        self.itos: list[str] = [UNK, *chars]
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(self.itos) if i != UNK_ID}

    @classmethod
    def build(cls, texts: Iterable[str], extra: str = "") -> CharVocab:
        """Every character of ``texts`` and ``extra``, sorted so that the same text gives the same ids."""
        seen: set[str] = set(extra)
        for text in texts:
            seen.update(text)
        return cls(sorted(seen))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, ch: object) -> bool:
        return ch in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} ids)"

    def encode(self, text: str) -> list[int]:
        """One id per character; characters outside the vocabulary become ``UNK_ID``."""
        stoi = self.stoi
        return [stoi.get(ch, UNK_ID) for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ``ids``; ``UNK_ID`` becomes U+FFFD. An id outside the vocabulary is a bug: ValueError."""
        itos = self.itos
        out: list[str] = []
        for i in ids:
            if not 0 <= i < len(itos):
                raise ValueError(f"id {i} is outside the vocabulary of {len(itos)} ids")
            out.append(REPLACEMENT if i == UNK_ID else itos[i])
        return "".join(out)

    def to_json(self) -> list[str]:
        """The id → character table as a plain list (``"<unk>"`` first): safe for a weights-only checkpoint."""
        return list(self.itos)

    @classmethod
    def from_json(cls, data: object) -> CharVocab:
        """The inverse of ``to_json``; ValueError when ``data`` is not such a list."""
        if not isinstance(data, list) or not data or data[0] != UNK:
            raise ValueError(f"a vocabulary must be a list starting with {UNK!r}")
        return cls(data[1:])
