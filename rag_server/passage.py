"""The passage: one retrievable unit of text, the type every stage after chunking shares.

Article references live here too: chunking reads them from headings, and filters and
evaluation judgments compare them, so both sides must normalise them the same way.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# "Art. 7", "Art. 1º", "Art. 55-A", "Art. 7, § 1º", "Art. 7, I–IV"; also in plain-text statutes.
_ARTICLE = re.compile(
    r"^Art(?:igo|icle|\.)?\s*(\d+(?:\.\d{3})*)\s*(?:º|°|o(?![a-z]))?\s*(?:-\s*([A-Z])(?![a-z]))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of text and the metadata a citation needs."""

    id: str
    doc_id: str
    title: str
    language: str
    doc_type: str
    source: str
    section: str  # the heading path inside the document ("Capítulo II › Art. 7 — …")
    article: str | None  # "7", "55-A" for legal text, else None
    provision: str | None  # "§ 1º", "I–IV", "parágrafo único"; None for a whole article
    text: str

    @property
    def citation(self) -> str:
        """Where the passage comes from, as a lawyer would cite it (for other documents: the
        title and the section heading, so a reader can find the passage)."""
        if self.article is None:
            heading = self.section.split(" › ")[-1] if self.section else ""
            return f"{self.title} › {heading}" if heading and heading != self.title else self.title
        art = f"Art. {self.article}" + (f", {self.provision}" if self.provision else "")
        return f"{self.source}, {art}"

    @property
    def index_text(self) -> str:
        """What the indexes see: title and heading give a section's text its context."""
        return f"{self.title}\n{self.section}\n{self.text}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Passage:
        return cls(**{name: row.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


def parse_article_ref(text: str) -> tuple[str, str | None] | None:
    """``"Art. 7, § 1º — x"`` → ``("7", "§ 1º")``; ``None`` when text is not an article ref."""
    match = _ARTICLE.match(text.strip())
    if not match:
        return None
    number = match.group(1).replace(".", "") + (f"-{match.group(2).upper()}" if match.group(2) else "")
    rest = text.strip()[match.end() :]
    provision = None
    if rest.startswith(","):
        provision = re.split(r"\s+[—–-]\s+", rest[1:].strip(), maxsplit=1)[0].strip() or None
    return number, provision


def normalize_article(value: str) -> str:
    """Canonical article string for comparisons and filters: ``"Art. 55-a"`` → ``"55-A"``."""
    ref = parse_article_ref(value if value.lower().startswith("art") else f"Art. {value}")
    return ref[0] if ref else value.strip().upper()
