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
prefix, never at the start of a line, and the prompt always has ``3 + len(citations)`` lines
(4 with the ``(no passages)`` line). This keeps the structure unforgeable; it does not make the
generator ignore what a passage asks for, which is the instructions' and the model's job.

Budget. The whole prompt, counted in characters (``len`` of the ``str``), is at most ``budget``.
Passages go in whole, in the hits' order, while they fit; the first one that does not is cut to
the run of whole sentences (each ending in ``.``, ``!`` or ``?`` followed by a space) that fits
and shares the most words with the question — its leading sentences when none shares any — or
dropped when no sentence fits, and nothing after it is added. (A 768-character generator leaves
room for about one passage: the sentence that answers must be in it.) Cutting only at sentence
boundaries, after NFC, never splits a surrogate pair, a combining sequence or an emoji sequence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .analysis import fold
from .errors import EmptyQueryError, InvalidParameterError

if TYPE_CHECKING:  # only for annotations: assembling a prompt needs no index or model code
    from .retrieval.base import Hit

DEFAULT_BUDGET = 2000
"""Characters allowed for the whole prompt when the caller gives no budget."""

NO_PASSAGES = "(no passages)"

# Categories that are never kept as they are: controls (Cc, which hold \n, \r, \t, \x85…), line and
# paragraph separators (Zl, Zp). Format characters (Cf) are kept: ZWJ and ZWNJ belong to emoji
# sequences and to scripts, and none of them breaks a line.
_FLATTENED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# A sentence ends at ., ! or ? followed by a space; the cut keeps the mark and drops the space.
_SENTENCE_END = re.compile(r"[.!?](?= )")


@dataclass(frozen=True)
class Citation:
    """One numbered passage of the prompt: ``[number]`` in the prompt text refers to it.

    ``text`` and ``citation`` are what the prompt holds (one line, NFC, possibly cut at a
    sentence end), so a caller can show exactly what the generator saw.
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


@dataclass(frozen=True)
class Prompt:
    """The assembled prompt, the passages it numbers (in order) and whether the budget cut any."""

    text: str
    citations: list[Citation]
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


_WORD = re.compile(r"[^\W\d_]{4,}")


def _stems(text: str) -> set[str]:
    """Words of ≥ 4 letters, accents folded, cut to 5 letters: "processing" meets "processed"."""
    return {w[:5] for w in _WORD.findall(fold(text))}


def _trim_to_sentence(text: str, room: int, asked: frozenset[str] = frozenset()) -> str:
    """At most ``room`` characters of ``text``, cut at sentence boundaries.

    Without ``asked``: the longest prefix that ends a sentence. With ``asked`` (the question's
    stems): the run of whole sentences that fits and shares the most of them, the earliest on
    ties, so the leading sentences when none shares any. A tight budget then keeps the sentence
    that answers, not merely the first ones. ``""`` when no sentence fits. The end of the text
    also ends a sentence, but callers only trim a text that does not fit whole.
    """
    if len(text) <= room:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]  # sentence i is starts[i]:ends[i]
    starts = [0] + [end + 1 for end in ends[:-1]]  # a sentence end is followed by one space
    best, best_score = "", -1
    for i, start in enumerate(starts if asked else starts[:1]):
        j = i
        while j < len(ends) and ends[j] - start <= room:
            j += 1
        if j == i:
            continue  # sentence i alone is longer than the room
        window = text[start : ends[j - 1]]
        score = len(_stems(window) & asked)
        if score > best_score:
            best, best_score = window, score
    return best


def _check_budget(budget: int) -> int:
    # bool is an int subclass, but ``build_prompt(q, hits, True)`` is a bug, not a budget of 1.
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise InvalidParameterError(f"budget must be an integer number of characters, got {budget!r}")
    return budget


def build_prompt(question: str, hits: Sequence[Hit], budget: int = DEFAULT_BUDGET) -> Prompt:
    """The prompt for ``question`` over ``hits``, at most ``budget`` characters long.

    Pure and deterministic: the same arguments always give the same ``Prompt``. Passages keep
    the hits' order; the first one that does not fit whole is cut, at sentence boundaries, to
    the run of sentences sharing the most words with the question, and ends the context. A
    passage whose id, or whose one-line text, was already seen is skipped (the first one wins),
    and so is a passage with no text left once flattened. Raises
    ``InvalidParameterError`` when the budget cannot hold even the question with the empty
    frame, and ``EmptyQueryError`` when the question is blank.
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
    # construction, since passages are only added while they fit.
    minimum = len(head) + len(NO_PASSAGES) + 1 + len(tail)
    if minimum > budget:
        raise InvalidParameterError(
            f"budget of {budget} characters cannot hold the question and the prompt frame, "
            f"which need {minimum}; raise the budget or shorten the question"
        )

    asked_stems = frozenset(_stems(asked))
    lines: list[str] = []
    citations: list[Citation] = []
    used = len(head) + len(tail)  # each context line adds its length plus one newline
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    truncated = False
    for hit in hits:
        passage = hit.passage
        text = one_line(passage.text)
        if passage.id in seen_ids or text in seen_texts or not text:
            continue
        seen_ids.add(passage.id)
        seen_texts.add(text)

        number = len(citations) + 1
        citation = one_line(passage.citation)
        prefix = f"[{number}] ({citation}) "
        room = budget - used - 1 - len(prefix)
        kept = _trim_to_sentence(text, room, asked_stems)
        if kept != text:
            # The first passage that does not fit whole ends the context: adding a later, shorter
            # one would reward passages for ranking low and break "in the hits' order".
            truncated = True
        if not kept:
            break
        line = prefix + kept
        lines.append(line)
        used += len(line) + 1
        citations.append(
            Citation(
                number=number,
                passage_id=passage.id,
                doc_id=passage.doc_id,
                title=passage.title,
                source=passage.source,
                article=passage.article,
                provision=passage.provision,
                citation=citation,
                language=passage.language,
                score=float(hit.score),
                text=kept,
            )
        )
        if truncated:
            break

    body = "\n".join(lines) if lines else NO_PASSAGES
    return Prompt(text=f"{head}{body}\n{tail}", citations=citations, truncated=truncated)
