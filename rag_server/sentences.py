"""The one sentence splitter: chunking, evidence selection, the prompt and the generator's
training data all cut text at the same places.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (closing quotes or brackets may follow) when
whitespace follows and the next sentence visibly starts: a capital letter, a digit, ``§`` or an
opening quote or bracket before one. A paragraph break (a blank line) always ends a sentence.

Legal Portuguese and English are full of full stops that end nothing, so a mark is *not* a
boundary when

* the word it closes is an abbreviation: ``art.``, ``arts.``, ``inc.``, ``n.``, ``cf.``,
  ``p.ex.``, ``e.g.``, ``i.e.``, ``Res.``, titles (``Dr.``), months (``jan.``, ``Sept.``)…,
  or any run of single letters and dots (``U.S.``, ``S.A.``);
* the word is a single letter (an initial, or an item such as ``inciso I.`` — rarely the true
  end of a sentence, and splitting there leaves a fragment that starts with a capital);
* the next "sentence" is an enumeration marker such as ``(II)`` or ``b)``, which continues a list.

Numbers never split: ``Lei 13.709/2018``, ``R$ 50.000.000,00`` and ``2,5%`` have no space after
their dots. Everything is returned as offsets into the text given, so a caller can point at the
exact characters of a passage.
"""

from __future__ import annotations

import re
from typing import NamedTuple

ABBREVIATIONS = frozenset(
    """
    art arts inc incs al n nº no nos nr num pp pág págs pag pags parág tít seç
    cf ex p.ex e.g i.e vs sr sra srs dr dra drs prof profa ltda cia s.a
    res dec decr lc mp vol fig op cit ibid
    jan fev feb abr apr jun jul ago aug sep sept oct nov dez dec
    """.split()  # noqa: SIM905
)
"""Lower-cased words that a full stop follows without ending the sentence."""

# A candidate end: one or more terminal marks, optional closing quotes/brackets, then whitespace.
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
# What a new sentence may start with (after optional opening quotes/brackets).
_STARTS = re.compile(r"[\"'“‘«(\[]*[A-ZÀ-ÖØ-Þ0-9§]")
# "(II)", "(b)", "II)", "b)": an enumeration item continues the list it belongs to.
_ENUMERATION = re.compile(r"\(?(?:[IVXLCDM]+|[a-zA-Z]|\d{1,2})\)")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_INITIALS = re.compile(r"(?:\w\.)+\w?")


class Span(NamedTuple):
    """``text[start:end]`` is one sentence, without surrounding whitespace."""

    start: int
    end: int


def _is_abbreviation(text: str, mark: int) -> bool:
    """Whether the word before the full stop at ``text[mark]`` is one that does not end a sentence."""
    begin = mark
    while begin > 0 and not text[begin - 1].isspace():
        begin -= 1
    word = text[begin:mark].lstrip("\"'“‘«([").lower()
    if not word:
        return False
    if len(word) == 1 and word.isalpha():
        return True  # an initial or an item letter/numeral
    return word in ABBREVIATIONS or bool(_INITIALS.fullmatch(word))


def _breaks(text: str) -> list[tuple[int, int]]:
    """(end of a sentence, start of the next) for every boundary in ``text``."""
    found: list[tuple[int, int]] = []
    for match in _END.finditer(text):
        nxt = match.end()
        while nxt < len(text) and text[nxt].isspace():
            nxt += 1
        if nxt >= len(text) or not _STARTS.match(text, nxt) or _ENUMERATION.match(text, nxt):
            continue
        marks = match.group()
        if marks[0] == "." and len(marks.rstrip("\"'”’»)]")) == 1 and _is_abbreviation(text, match.start()):
            continue
        found.append((match.end(), nxt))
    for match in _PARAGRAPH.finditer(text):
        found.append((match.start(), match.end()))
    return sorted(set(found))


def sentence_spans(text: str) -> list[Span]:
    """The sentences of ``text`` as offsets, in order, each stripped of surrounding whitespace."""
    spans: list[Span] = []
    start = 0
    for end, nxt in [*_breaks(text), (len(text), len(text))]:
        if end < start:
            continue  # a paragraph break right after a sentence end: already cut there
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece.rstrip())
        if trail > lead:
            spans.append(Span(start + lead, start + trail))
        start = nxt
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``. For a one-line text with single spaces, ``" ".join`` of the
    result gives the text back."""
    return [text[s.start : s.end] for s in sentence_spans(text)]


_CLAUSE_END = re.compile(r"[;:](?=\s)")


def split_clauses(sentence: str) -> list[str]:
    """A sentence cut after each ``;`` or ``:`` that whitespace follows: the parts of a long
    enumeration, for a chunker that must split a sentence too long for one passage."""
    parts: list[str] = []
    start = 0
    for match in _CLAUSE_END.finditer(sentence):
        parts.append(sentence[start : match.end()].strip())
        start = match.end()
    parts.append(sentence[start:].strip())
    return [p for p in parts if p]


class Enumeration(NamedTuple):
    """A sentence that lists items: the lead-in before the first item, and each item (offsets
    into the text, each without the ``;`` and the "e"/"and" that join it to the next)."""

    lead: Span
    items: tuple[Span, ...]


ITEM_MARKER = r"\((?:[IVXL]+|[a-z]|\d{1,2})\)|[IVXL]+\s?[—–-](?=\s)|[a-z]\)"
"""An enumeration item's marker: "(I)", "(a)", "(1)", "I —", "II –", "a)"."""
# Where a list goes on: a marker after ":" or ";" (and an optional "e", "and", "ou", "or").
# Never after a comma: "art. 52, II — …" cites an item.
_ITEM = re.compile(rf"(?<=[:;])\s+(?:(?:e|and|ou|or)\s+)?(?P<marker>{ITEM_MARKER})")


def _style(marker: str) -> str:
    """A marker's kind, so that "(I)" items are not cut at a nested "(a)"."""
    if marker.startswith("("):
        kind = marker[1:-1]
        return "(roman)" if kind[0] in "IVXL" else "(digit)" if kind.isdigit() else "(letter)"
    return "letter)" if marker.endswith(")") else "roman —"


def enumeration(text: str, span: Span) -> Enumeration | None:
    """The items of the sentence ``text[span]`` when it lists two or more of one kind after a
    lead-in ("O art. 14 concede prazo em dobro: (I) …; (II) …; e (III) …."), else None. When
    kinds are nested, the most frequent kind is the list."""
    sentence = text[span.start : span.end]
    by_style: dict[str, list[re.Match[str]]] = {}
    for match in _ITEM.finditer(sentence):
        by_style.setdefault(_style(match.group("marker")), []).append(match)
    markers = max(by_style.values(), key=len, default=[])
    if len(markers) < 2:
        return None
    lead_end = len(sentence[: markers[0].start()].rstrip())
    if lead_end == 0:
        return None
    items = []
    for i, match in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(sentence)
        body = sentence[match.start("marker") : end].rstrip()
        if i + 1 < len(markers):
            body = body.rstrip(";:, ")
        items.append(Span(span.start + match.start("marker"), span.start + match.start("marker") + len(body)))
    return Enumeration(Span(span.start, span.start + lead_end), tuple(items))
