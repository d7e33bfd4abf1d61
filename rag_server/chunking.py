"""Structure-aware chunking of documents into passages with stable ids.

* Legal Markdown (``type: law | regulation``) splits at ``## Art. N`` / ``### Art. N, §…``
  headings; each passage records its article and provision.
* Plain-text statutes (``Art. 1º …``, ``§ 1º``, ``Parágrafo único``, ``I - …``) split at
  articles, and a long article at its paragraphs and items, grouped under the size limit.
* Everything else splits at headings, then paragraphs, then sentences: never mid-sentence,
  unless a single "sentence" exceeds the limit on its own (then at a word boundary).

A passage id is ``<doc id>#<hash of its heading and text>``: the same input gives the same ids,
and editing one document changes only that document's passages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .documents import Document
from .passage import Passage, parse_article_ref
from .sentences import split_clauses, split_sentences

DEFAULT_MAX_CHARS = 1000

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TXT_PARAGRAPH = re.compile(r"^\s*(§\s*\d+\s*[º°o]?|Par[áa]grafo\s+[úu]nico)", re.IGNORECASE)
_TXT_ITEM = re.compile(r"^\s*([IVXLC]+)\s*[-–—]\s+")
_TXT_HEADING = re.compile(r"^\s*(CAP[ÍI]TULO|Cap[íi]tulo|SE[ÇC][ÃA]O|Se[çc][ãa]o|T[ÍI]TULO|LIVRO)\b")


# --------------------------------------------------------------------------- splitting


def _pieces(unit: str) -> list[str]:
    """A unit too long for one passage, cut at its sentences; a single sentence at its clauses
    (``;`` / ``:``), which is how long enumerations in legal text are punctuated."""
    pieces = split_sentences(unit)
    return split_clauses(unit) if len(pieces) == 1 else pieces


def pack(units: Iterable[str], max_chars: int, sep: str = "\n\n") -> list[str]:
    """Greedily join units into chunks of at most ``max_chars``; oversized units are split
    into sentences, and a sentence longer than the limit at word boundaries."""
    chunks: list[str] = []
    current = ""
    for unit in units:
        unit = unit.strip()
        if not unit:
            continue
        if len(unit) > max_chars:
            pieces = _pieces(unit)
            if len(pieces) == 1:
                pieces = _wrap_words(unit, max_chars)
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(pack(pieces, max_chars, sep=" ") if len(pieces) > 1 else pieces)
            continue
        candidate = f"{current}{sep}{unit}" if current else unit
        if len(candidate) <= max_chars:
            current = candidate
        else:
            chunks.append(current)
            current = unit
    if current:
        chunks.append(current)
    return chunks


def _wrap_words(text: str, max_chars: int) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > max_chars:  # a "word" longer than the limit: cut it
            if line:
                out.append(line)
                line = ""
            out.append(word[:max_chars])
            word = word[max_chars:]
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= max_chars:
            line = candidate
        else:
            out.append(line)
            line = word
    if line:
        out.append(line)
    return out


# --------------------------------------------------------------------------- chunkers


@dataclass
class _Section:
    path: list[str]
    article: str | None
    provision: str | None
    body: list[str]


def _markdown_sections(doc: Document) -> Iterator[_Section]:
    stack: list[tuple[int, str]] = []
    section = _Section([], None, None, [])
    for line in doc.text.split("\n"):
        match = _HEADING.match(line)
        if not match:
            section.body.append(line)
            continue
        yield section
        level, heading = len(match.group(1)), match.group(2).strip()
        stack = [(lvl, h) for lvl, h in stack if lvl < level] + [(level, heading)]
        article, provision = None, None
        if doc.is_legal:
            for _, h in reversed(stack):  # the nearest article heading above this line
                ref = parse_article_ref(h)
                if ref:
                    article, provision = ref if h == heading else (ref[0], None)
                    break
        section = _Section([h for _, h in stack], article, provision, [])
    yield section


def _paragraphs(lines: list[str]) -> list[str]:
    text = "\n".join(lines).strip()
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def chunk_markdown(doc: Document, max_chars: int) -> Iterator[tuple[_Section, str]]:
    for section in _markdown_sections(doc):
        for chunk in pack(_paragraphs(section.body), max_chars):
            yield section, chunk


def _statute_articles(doc: Document) -> Iterator[_Section]:
    """Plain-text statute → one section per article; lines before the first article and
    chapter/section headings only update the heading path."""
    headings: list[str] = []
    current: _Section | None = None
    pending_heading = False
    for raw in doc.text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        ref = parse_article_ref(line)
        if ref:
            if current:
                yield current
            current = _Section([*headings, f"Art. {ref[0]}"], ref[0], None, [line])
            pending_heading = False
        elif _TXT_HEADING.match(line):
            headings = [line]
            pending_heading = True
            if current:
                yield current
                current = None
        elif pending_heading and current is None and line.isupper():
            headings = [f"{headings[-1]} {line}"] if headings else [line]  # "CAPÍTULO I" + title
        elif current:
            current.body.append(line)
    if current:
        yield current


def _statute_units(section: _Section) -> list[tuple[str | None, str]]:
    """Split an article into (label, text) units: caput, then each § and item."""
    units: list[tuple[str | None, str]] = []
    for line in section.body:
        para = _TXT_PARAGRAPH.match(line)
        item = _TXT_ITEM.match(line)
        if para:
            label = re.sub(r"\s+", " ", para.group(1)).strip()
            units.append(("parágrafo único" if label.lower().startswith("par") else label, line))
        elif item:
            units.append((item.group(1), line))
        elif units and not line.startswith(("a)", "b)")) and units[-1][0] is None and len(units) == 1:
            units[-1] = (None, f"{units[-1][1]} {line}")
        elif units:
            units[-1] = (units[-1][0], f"{units[-1][1]}\n{line}")
        else:
            units.append((None, line))
    return units


def chunk_statute(doc: Document, max_chars: int) -> Iterator[tuple[_Section, str]]:
    for article in _statute_articles(doc):
        units = _statute_units(article)
        whole = "\n".join(text for _, text in units)
        if len(whole) <= max_chars:
            yield article, whole
            continue
        groups: list[list[tuple[str | None, str]]] = [[]]
        for unit in units:
            size = sum(len(t) + 1 for _, t in groups[-1]) + len(unit[1])
            if groups[-1] and size > max_chars:
                groups.append([])
            groups[-1].append(unit)
        for group in groups:
            labels = [label or "caput" for label, _ in group]
            provision = labels[0] if len(labels) == 1 else f"{labels[0]}–{labels[-1]}"
            part = _Section(article.path, article.article, provision, [])
            for chunk in pack([t for _, t in group], max_chars, sep="\n"):
                yield part, chunk


def chunk_document(doc: Document, max_chars: int = DEFAULT_MAX_CHARS) -> list[Passage]:
    """The passages of one document, in reading order, with stable ids."""
    if doc.format == "text" and doc.is_legal:
        pieces: Iterable[tuple[_Section, str]] = chunk_statute(doc, max_chars)
    elif doc.format == "text":
        plain = Document(**{**doc.__dict__, "type": "text"})
        pieces = ((s, c) for s, c in chunk_markdown(plain, max_chars))
    elif doc.format == "beir":
        pieces = ((_Section([], None, None, []), c) for c in pack(_paragraphs([doc.text]), max_chars))
    else:
        pieces = chunk_markdown(doc, max_chars)
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for section, text in pieces:
        heading = " › ".join(section.path)
        digest = hashlib.sha1(f"{heading}\n{text}".encode()).hexdigest()[:12]
        seen[digest] = seen.get(digest, 0) + 1
        suffix = "" if seen[digest] == 1 else f"-{seen[digest]}"
        passages.append(
            Passage(
                id=f"{doc.id}#{digest}{suffix}",
                doc_id=doc.id,
                title=doc.title,
                language=doc.language,
                doc_type=doc.type,
                source=doc.source,
                section=heading,
                article=section.article,
                provision=section.provision,
                text=text,
            )
        )
    return passages


def chunk_corpus(docs: Iterable[Document], max_chars: int = DEFAULT_MAX_CHARS) -> list[Passage]:
    return [p for doc in docs for p in chunk_document(doc, max_chars)]
