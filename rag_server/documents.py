"""Reading a corpus: Markdown with front matter, plain text, and BEIR ``corpus.jsonl``.

Every loader returns :class:`Document` objects; chunking into passages is ``chunking.py``'s job.
Any problem with a file raises :class:`~rag_server.errors.CorpusError` naming that file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .analysis import LANGUAGES, detect_language
from .errors import CorpusError

DOC_TYPES = ("law", "regulation", "guide", "text", "beir")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class Document:
    """One source document, before chunking."""

    id: str
    title: str
    language: str
    type: str
    source: str
    text: str  # body without front matter
    format: str  # "markdown" | "text" | "beir"
    path: str  # where it came from (relative to the corpus root), for error messages
    articles: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_legal(self) -> bool:
        return self.type in ("law", "regulation")


def slugify(text: str) -> str:
    """A document id from a file path: lowercase ASCII letters, digits and ``-``."""
    from .analysis import fold

    slug = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return slug or "doc"


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(path, f"cannot read file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(path, f"not valid UTF-8 (byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_markdown(text: str, path: Path, rel: str) -> Document:
    """A Markdown document; front matter (id, title, language, type, source, articles)."""
    match = _FRONT_MATTER.match(text)
    if text.startswith("---") and not match:
        raise CorpusError(path, "front matter opened with '---' but never closed")
    if not match:  # a user's plain Markdown: derive what we can
        heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        return Document(
            id=slugify(rel.rsplit(".", 1)[0]),
            title=heading.group(1).strip() if heading else Path(rel).stem,
            language=detect_language(text[:5000]),
            type="guide",
            source=rel,
            text=text,
            format="markdown",
            path=rel,
        )
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise CorpusError(path, f"malformed front matter{line}") from None
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        # PyYAML parses but cannot construct some values ("date: 2024-13-01", "!!int x").
        raise CorpusError(path, f"malformed front matter: {type(exc).__name__}: {str(exc)[:120]}") from None
    if not isinstance(meta, dict):
        raise CorpusError(path, "malformed front matter: expected 'key: value' lines")
    body = text[match.end() :]
    return Document(
        id=_require_id(meta, path),
        title=_require_str(meta, "title", path),
        language=_require_choice(meta, "language", LANGUAGES, path),
        type=_require_choice(meta, "type", DOC_TYPES, path),
        source=str(meta.get("source") or "").strip() or rel,
        text=body,
        format="markdown",
        path=rel,
        articles=_articles(meta.get("articles", []), path),
    )


def _require_str(meta: dict[str, object], key: str, path: Path) -> str:
    value = meta.get(key)
    if value is None or not str(value).strip():
        raise CorpusError(path, f"front matter is missing '{key}'")
    return str(value).strip()


def _require_id(meta: dict[str, object], path: Path) -> str:
    value = _require_str(meta, "id", path)
    if not _ID_RE.match(value):
        raise CorpusError(path, f"front matter 'id' {value!r} must be lowercase letters, digits, '-'")
    return value


def _require_choice(meta: dict[str, object], key: str, choices: tuple[str, ...], path: Path) -> str:
    value = _require_str(meta, key, path)
    if value not in choices:
        raise CorpusError(path, f"front matter '{key}' is {value!r}; expected one of {list(choices)}")
    return value


def _articles(value: object, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CorpusError(path, 'front matter \'articles\' must be a list, e.g. ["7", "55-A"]')
    return tuple(str(a).strip() for a in value)


def parse_text(text: str, rel: str) -> Document:
    """A plain-text document: title from its first line, language detected."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), Path(rel).stem)
    looks_legal = len(re.findall(r"^\s*Art\.\s*\d", text, re.MULTILINE)) >= 2
    return Document(
        id=slugify(rel.rsplit(".", 1)[0]),
        title=first[:200],
        language=detect_language(text[:5000]),
        type="law" if looks_legal else "text",
        source=rel,
        text=text,
        format="text",
        path=rel,
    )


def read_beir_corpus(path: Path, language: str = "en") -> Iterator[Document]:
    """Documents of a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text`` per line)."""
    text = _read_text(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            doc_id, body = str(row["_id"]), str(row.get("text") or "")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise CorpusError(path, f"line {lineno}: not a BEIR record with '_id' and 'text'") from None
        title = str(row.get("title") or "").strip()
        try:  # JSON escapes can encode lone surrogates, which are not text
            (doc_id + title + body).encode("utf-8")
        except UnicodeEncodeError:
            raise CorpusError(path, f"line {lineno}: invalid Unicode (a lone surrogate escape)") from None
        yield Document(
            id=doc_id,
            title=title or doc_id,
            language=language,
            type="beir",
            source=path.name,
            text=body,
            format="beir",
            path=f"{path.name}:{lineno}",
        )


def iter_corpus_files(root: Path) -> list[Path]:
    """Corpus files under ``root`` in a stable order (README/FORMAT notes are skipped)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CorpusError(root, "corpus directory does not exist")
    files = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and (p.suffix.lower() in SUFFIXES or p.name == "corpus.jsonl")
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.name.upper() not in ("README.MD", "FORMAT.MD")
    ]
    return sorted(files)


def load_corpus(roots: Iterable[Path]) -> list[Document]:
    """Every document under the given directories (or files), ids checked for uniqueness."""
    docs: list[Document] = []
    seen: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        for path in iter_corpus_files(root):
            rel = path.name if root.is_file() else path.relative_to(root).as_posix()
            if path.name == "corpus.jsonl":
                new = list(read_beir_corpus(path))
            elif path.suffix.lower() == ".md":
                new = [parse_markdown(_read_text(path), path, rel)]
            else:
                new = [parse_text(_read_text(path), rel)]
            for doc in new:
                if doc.id in seen:
                    raise CorpusError(path, f"document id {doc.id!r} already used by {seen[doc.id]}")
                seen[doc.id] = rel
                docs.append(doc)
    if not docs:
        raise CorpusError(", ".join(str(r) for r in roots), "no documents found (.md, .txt or corpus.jsonl)")
    return docs


def corpus_checksum(roots: Iterable[Path]) -> str:
    """sha256 over the relative path and bytes of every corpus file: identifies a corpus."""
    digest = hashlib.sha256()
    for root in roots:
        root = Path(root)
        for path in iter_corpus_files(root):
            rel = path.name if root.is_file() else path.relative_to(root).as_posix()
            digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
