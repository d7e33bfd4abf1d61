"""From a prompt to an answer a reader can trust: point the generator at the best evidence
sentence, end the answer cleanly, and say which sentence of which passage it came from.

Pointing. The generator was trained to copy the context sentence that shares the question's
words; it does not know which sentence the evidence ranking put first, and on the answer set it
copied another one for many questions (docs/BENCHMARKS.md). The answer line of the prompt
therefore starts with the first words of the chosen sentence — the shortest run of whole words
(at least ``POINTER_MIN_CHARS``) that opens no other context line — and the generator
completes it: it copies the rest of that sentence and stops at the line end. The answer is the
pointer plus the completion, and always starts where a sentence starts.

Endings. A completion that reached ``max_new_chars`` without its stop character is cut at its
last word boundary and ends with "…", never mid-word. An answer that does not follow the
sentence it was pointed to (the generator ended it early, say) is pointed again with half the
sentence, then replaced by the sentence itself: a fragment is never shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from .prompt import Citation, ContextLine, Prompt

POINTER_MIN_CHARS = 12
"""Shortest pointer: a couple of words, enough for the copy to find its sentence."""
ELLIPSIS = "…"


@dataclass(frozen=True)
class AnswerSource:
    """The context sentence an answer came from: citation ``number``, and ``start``/``end``
    offsets of the sentence in that passage's text."""

    number: int
    passage_id: str
    start: int
    end: int
    text: str


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
