"""From a prompt to an answer a reader can trust: point the generator at the best evidence
sentence, end the answer cleanly, and say which sentence of which passage it came from.

Pointing. The generator was trained to copy the context sentence that shares the question's
words; it does not know which sentence the evidence ranking put first, and on the answer set it
copied another one for many questions (docs/BENCHMARKS.md). The answer line of the prompt
therefore starts with the first words of the chosen sentence — the shortest run of whole words
(at least ``POINTER_MIN_CHARS``) that opens no other context line — and the generator
completes it: it copies the rest of that sentence and stops at the line end. The answer is the
pointer plus the completion, and always starts where a sentence starts.

A second sentence. The ranking's first sentence holds the fact for about half of the answer set's
questions, its first two for about two thirds (docs/BENCHMARKS.md). When the runner-up scores
within ``RUNNER_UP_MARGIN`` of the best — the ranker is unsure between them — the answer goes on
with it, pointed and checked the same way, so that it carries both and cites each. A clear winner
answers alone.

Endings. A completion that reached ``max_new_chars`` without its stop character is cut at its
last word boundary and ends with "…", never mid-word. An answer that does not follow the
sentence it was pointed to (the generator ended it early, say) is pointed again with half the
sentence, then replaced by the sentence itself: a fragment is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .evidence import ELISION
from .prompt import Citation, ContextLine, Prompt
from .sentences import ITEM_MARKER

if TYPE_CHECKING:  # annotations only
    from .evidence import EvidenceSentence

POINTER_MIN_CHARS = 12
"""Shortest pointer: a couple of words, enough for the copy to find its sentence."""
ELLIPSIS = "…"
RUNNER_UP_MARGIN = 1.5
"""Largest score gap (in the evidence ranking's logit units) at which the runner-up sentence joins
the answer: within 1.5, it is at least e^-1.5 ≈ 0.22 times as likely as the best to hold the fact.
Chosen on the answer set's dev split (docs/BENCHMARKS.md, session 10): all of the gain of always
answering with two sentences (0.574 → 0.603 of dev questions with the fact in the answer), at
1.5 sentences an answer against 1.6; 1.0 gained nothing on dev once the answer-type signal
stopped counting citations and the question's own words."""


@dataclass(frozen=True)
class AnswerSource:
    """The context sentence an answer came from: citation ``number``, and ``start``/``end``
    offsets of the sentence in that passage's text."""

    number: int
    passage_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class AnswerPart:
    """One sentence of an answer as shown, the context sentence it came from (None: an answer the
    generator composed), and whether it quotes that sentence instead of the generator's text."""

    text: str
    source: AnswerSource | None
    quoted: bool


def cited(parts: Sequence[AnswerPart]) -> str:
    """The answer with each sentence followed by its citation number: "… [1] … [3]"."""
    return " ".join(f"{p.text} [{p.source.number}]" if p.source else p.text for p in parts)


def pointer(lines: list[ContextLine], index: int = 0) -> str:
    """The shortest word-aligned prefix of ``lines[index].text`` (at least ``POINTER_MIN_CHARS``
    characters, or the whole sentence) that no other line starts with."""
    target = lines[index].text
    others = [line.text for i, line in enumerate(lines) if i != index]
    end = 0
    while end < len(target):
        space = target.find(" ", end + 1)
        end = len(target) if space < 0 else space
        prefix = target[:end]
        if len(prefix) >= POINTER_MIN_CHARS and not any(o.startswith(prefix) for o in others):
            return prefix
    return target


def clean_ending(text: str, capped: bool) -> str:
    """``text`` as it may be shown: stripped, and, when generation was cut by the length cap, cut
    back to its last whole word with an ellipsis."""
    text = text.strip()
    if not capped or not text:
        return text
    cut = text.rfind(" ")
    kept = text[:cut].rstrip(" ,;:") if cut > 0 else text
    return kept + ELLIPSIS


def without_repeated_lead(previous: str, text: str) -> str:
    """``text`` as shown after ``previous`` in one answer: when both quote items of one list after
    the same lead-in ("A multa é reduzida…: [...] (IV) 5% …" then "A multa é reduzida…: [...]
    (I) …", see ``evidence.evidence_units``), the second keeps only the elision mark and its item;
    any other ``text`` is returned as it is."""
    shared = _common_prefix(previous, text)
    colon = text.rfind(":", 0, shared)
    rest, before = text[colon + 1 :].strip(), previous[colon + 1 :].strip()
    if colon < POINTER_MIN_CHARS or not (_LIST_ITEM.match(rest) and _LIST_ITEM.match(before)):
        return text
    item = rest.removeprefix(ELISION).strip()
    return f"{ELISION} {item}" if item else text


_LIST_ITEM = re.compile(rf"{re.escape(ELISION)}|{ITEM_MARKER}")
"""What follows a lead-in's colon in a unit quoting one item: the elision mark or the item's marker."""


def follows(answer: str, sentence: str) -> bool:
    """Whether ``answer`` is ``sentence``, or its opening cut at the length cap ("…")."""
    if answer == sentence:
        return True
    return answer.endswith(ELLIPSIS) and sentence.startswith(answer.removesuffix(ELLIPSIS)) and len(answer) > 1


def locate(answer: str, prompt: Prompt) -> AnswerSource | None:
    """The context sentence ``answer`` was copied from: the line sharing the longest opening
    with it (at least ``POINTER_MIN_CHARS`` characters, or the whole answer); None when no
    line does, e.g. an answer the generator composed."""
    body = answer.removesuffix(ELLIPSIS)
    need = min(POINTER_MIN_CHARS, len(body))
    best: ContextLine | None = None
    best_len = 0
    for line in prompt.lines:
        shared = _common_prefix(body, line.text)
        if shared > best_len:
            best, best_len = line, shared
    if best is None or best_len < need or need == 0:
        return None
    cited: Citation = prompt.citations[best.number - 1]
    return AnswerSource(best.number, cited.passage_id, best.span.start, best.span.end, best.text)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def close_runner_up(ranked: Sequence[EvidenceSentence], margin: float | None) -> bool:
    """Whether the sentence ranked second scores within ``margin`` of the first (None: never)."""
    return margin is not None and len(ranked) >= 2 and ranked[0].score - ranked[1].score < margin


def runner_up(prompt: Prompt, ranked: Sequence[EvidenceSentence], margin: float | None) -> int | None:
    """The index in ``prompt.lines`` of the sentence ranked second when it scores within
    ``margin`` of the first (and the prompt holds both), else None; ``margin`` None: never."""
    if not close_runner_up(ranked, margin) or len(prompt.lines) < 2:
        return None
    best, second = ranked[0], ranked[1]
    first = prompt.lines[0]
    if first.span != best.span or prompt.citations[first.number - 1].passage_id != best.passage.id:
        return None  # the best sentence did not fit the prompt: nothing to add to
    for index, line in enumerate(prompt.lines[1:], start=1):
        if line.span == second.span and prompt.citations[line.number - 1].passage_id == second.passage.id:
            return index
    return None
