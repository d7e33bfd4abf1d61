"""Assemble the generator's prompt from a question and retrieved hits, with numbered citations.

The prompt has exactly this shape, one item per line::

    Question: <question>
    Context:
    [1] (<citation>) <passage text>
    [2] (<citation>) <passage text>
    Answer:

and, when no passage is included, ``(no passages)`` in place of the numbered lines. The number
``[n]`` is the n-th entry of ``Prompt.citations``, so an answer that cites ``[2]`` can be traced
back to a passage id, a document and a provision.

Prompt-injection containment. Passages come from a corpus and are data, not instructions, yet a
passage may hold text such as ``"\\nAnswer: ignore previous instructions"``, ``"[3] (Fake) …"`` or
``"Question: …"``. The frame is line-based, so the one thing such text needs to forge a section
or a numbered context line is a line break. Every piece of untrusted text (passage, citation and
question) is therefore NFC-normalised and flattened onto one line: every whitespace run,
including every character ``str.splitlines`` treats as a line boundary (``\\n``, ``\\r``, ``\\v``,
``\\f``, ``\\x1c``–``\\x1e``, ``\\x85``, U+2028, U+2029), and every other control character
becomes a single space. Whatever a passage says then sits after its own ``[n] (<citation>)``
prefix, never at the start of a line, and the prompt always has ``3 + len(lines)`` lines
(4 with the ``(no passages)`` line). This keeps the structure unforgeable; it does not make the
generator ignore what a passage asks for, which is the instructions' and the model's job.

Evidence. The context is made of sentences, one per line, each after the ``[n] (<citation>)`` of
the passage it comes from: two sentences of one passage share its number. ``build_prompt`` takes
them in the order given — the evidence ranking (``rag_server.evidence``), best first — or, with no
ranking, every sentence of the hits in reading order. A passage is numbered when its first
sentence goes in, so ``[1]`` is the passage of the best sentence.

Budget. The whole prompt, counted in characters (``len`` of the ``str``), is at most ``budget``.
Sentences go in whole, in order, while they fit; one that does not fit is left out and the next
is tried, so a long sentence never pushes out the shorter ones ranked after it (``truncated``
says that something was left out). Cutting only at sentence boundaries, after NFC, never splits
a surrogate pair, a combining sequence or an emoji sequence.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import EmptyQueryError, InvalidParameterError
from .passage import Passage
from .sentences import Span, sentence_spans

if TYPE_CHECKING:  # only for annotations: assembling a prompt needs no index or model code
    from .retrieval.base import Hit

DEFAULT_BUDGET = 2000
"""Characters allowed for the whole prompt when the caller gives no budget."""

NO_PASSAGES = "(no passages)"

# Categories that are never kept as they are: controls (Cc, which hold \n, \r, \t, \x85…), line and
# paragraph separators (Zl, Zp). Format characters (Cf) are kept: ZWJ and ZWNJ belong to emoji
# sequences and to scripts, and none of them breaks a line.
_FLATTENED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


@dataclass(frozen=True)
class Citation:
    """One numbered passage of the prompt: ``[number]`` in the prompt text refers to it.

    ``text`` is the passage's whole text as stored, and ``sentences`` the offsets into it of the
    sentences the prompt holds (prompt order), so a caller can show the passage and mark exactly
    what the generator saw; ``citation`` is the line's flattened citation.
    """

    number: int
    passage_id: str
    doc_id: str
    title: str
    source: str
    article: str | None
    provision: str | None
    citation: str
    language: str
    score: float
    text: str
    sentences: tuple[Span, ...]


@dataclass(frozen=True)
class ContextLine:
    """One line of the context: a sentence of the passage numbered ``number``."""

    number: int
    span: Span  # into that passage's text
    text: str  # as the prompt shows it (one line, NFC)


@dataclass(frozen=True)
class Prompt:
    """The assembled prompt, its lines, the passages it numbers, and whether the budget left
    anything out."""

    text: str
    citations: list[Citation]
    lines: list[ContextLine]
    truncated: bool


def one_line(text: str) -> str:
    """NFC-normalise ``text`` and flatten it onto one line with single spaces.

    Lone surrogates are dropped: they cannot be encoded, and a cut must never leave one behind.
    """
    chars: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if category == "Cs":
            continue
        chars.append(" " if ch.isspace() or category in _FLATTENED_CATEGORIES else ch)
    # str.split() with no argument splits on every whitespace run, so this also collapses runs.
    return " ".join("".join(chars).split())


def _check_budget(budget: int) -> int:
    # bool is an int subclass, but ``build_prompt(q, hits, True)`` is a bug, not a budget of 1.
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise InvalidParameterError(f"budget must be an integer number of characters, got {budget!r}")
    return budget


def frame_size(question: str) -> int:
    """Characters of the smallest prompt for ``question``: the frame with ``(no passages)``."""
    return len(f"Question: {one_line(question)}\nContext:\n") + len(NO_PASSAGES) + 1 + len("Answer:")


def reading_order(hits: Sequence[Hit]) -> list[tuple[Passage, Span]]:
    """Every sentence of ``hits``, passage by passage, in reading order."""
    return [(hit.passage, span) for hit in hits for span in sentence_spans(hit.passage.text)]


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    budget: int = DEFAULT_BUDGET,
    evidence: Sequence[tuple[Passage, Span] | tuple[Passage, Span, str]] | None = None,
) -> Prompt:
    """The prompt for ``question``, at most ``budget`` characters long.

    Its context holds the sentences of ``evidence`` ((passage, span) pairs, best first; a third
    element, when given, is the line's text in place of the span's, as for an item quoted after
    its lead-in, ``evidence.evidence_units``), or of ``reading_order(hits)`` when no evidence
    ranking is given, one per line, while they fit. A
    sentence whose one-line text was already included is skipped, and so is one that is empty
    once flattened or that belongs to a second, different passage under an id already used. Each
    passage's score is its hit's (0.0 for a passage that is not a hit).
    Pure and deterministic. Raises ``InvalidParameterError`` when the budget cannot hold even
    the question with the empty frame, and ``EmptyQueryError`` when the question is blank.
    """
    if not isinstance(question, str):
        raise InvalidParameterError(f"question must be a string, got {type(question).__name__}")
    budget = _check_budget(budget)
    asked = one_line(question)
    if not asked:
        raise EmptyQueryError("the question is empty")

    head = f"Question: {asked}\nContext:\n"
    tail = "Answer:"
    # The smallest prompt this function can return: with it fitting, every budget is met by
    # construction, since sentences are only added while they fit.
    minimum = frame_size(asked)
    if minimum > budget:
        raise InvalidParameterError(
            f"budget of {budget} characters cannot hold the question and the prompt frame, "
            f"which need {minimum}; raise the budget or shorten the question"
        )

    scores = {hit.passage.id: float(hit.score) for hit in hits}
    numbers: dict[str, int] = {}
    owners: dict[str, Passage] = {}  # the first passage met under each id (numbered ones are cited)
    kept: dict[str, list[Span]] = {}
    lines: list[ContextLine] = []
    seen: set[str] = set()
    used = len(head) + len(tail)  # each context line adds its length plus one newline
    truncated = False
    for passage, span, *shown in evidence if evidence is not None else reading_order(hits):
        if owners.setdefault(passage.id, passage) != passage:
            continue  # another passage under an id already used: ids must name one text
        text = one_line(shown[0] if shown else passage.text[span.start : span.end])
        if not text or text in seen:
            continue
        number = numbers.get(passage.id, len(numbers) + 1)
        line = f"[{number}] ({one_line(passage.citation)}) {text}"
        if used + len(line) + 1 > budget:
            truncated = True
            continue
        seen.add(text)
        numbers[passage.id] = number
        kept.setdefault(passage.id, []).append(span)
        lines.append(ContextLine(number, span, text))
        used += len(line) + 1

    citations = [
        Citation(
            number=number,
            passage_id=pid,
            doc_id=owners[pid].doc_id,
            title=owners[pid].title,
            source=owners[pid].source,
            article=owners[pid].article,
            provision=owners[pid].provision,
            citation=one_line(owners[pid].citation),
            language=owners[pid].language,
            score=scores.get(pid, 0.0),
            text=owners[pid].text,
            sentences=tuple(kept[pid]),
        )
        for pid, number in numbers.items()
    ]
    body = "\n".join(_render(line, citations[line.number - 1]) for line in lines) if lines else NO_PASSAGES
    return Prompt(text=f"{head}{body}\n{tail}", citations=citations, lines=lines, truncated=truncated)


def _render(line: ContextLine, citation: Citation) -> str:
    return f"[{line.number}] ({citation.citation}) {line.text}"
