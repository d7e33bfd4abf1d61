"""Article and resolution references written in a query ("art. 18", "Res. CD/ANPD 15/2024").

Legal users often name the provision they ask about. When they do, a passage that explains that
very article (of the cited resolution, or of the LGPD when no resolution is named) is the best
evidence, so the hybrid retriever can boost it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..analysis import fold
from ..passage import Passage

_ARTICLE = re.compile(r"\bart(?:igo|icle|s?\.)?s?\s*(\d{1,3})\s*(?:º|°|o\b)?(?:\s*-\s*([a-z])\b)?", re.IGNORECASE)
_RESOLUTION = re.compile(r"\bres(?:olucao|olution|\.)?\s*(?:cd\s*/\s*anpd\s*)?(?:n[.ºo°]?\s*)?(\d{1,3})\s*/\s*(\d{4})")


@dataclass(frozen=True)
class CitedRefs:
    articles: frozenset[str]
    resolutions: frozenset[str]  # "15/2024"

    def __bool__(self) -> bool:
        return bool(self.articles or self.resolutions)

    def matches(self, passage: Passage) -> bool:
        """The passage explains a cited article of the cited instrument (LGPD by default)."""
        source = _folded_source(passage.source)
        if self.resolutions:
            if not any(_resolution_pattern(r).search(source) for r in self.resolutions):
                return False
            return not self.articles or passage.article in self.articles
        return passage.article in self.articles and "13.709" in source


# The hybrid retriever asks ``matches`` of every fused candidate (up to 200 per query), and a
# corpus has only a few dozen distinct sources and cited resolutions: fold and compile each once.
@lru_cache(maxsize=4096)
def _folded_source(source: str) -> str:
    return fold(source)


@lru_cache(maxsize=1024)
def _resolution_pattern(resolution: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\d){re.escape(resolution)}(?!\d)")


def cited_refs(query: str) -> CitedRefs:
    text = fold(query)
    resolutions = frozenset(f"{int(n)}/{y}" for n, y in _RESOLUTION.findall(text))
    # Numbers inside a resolution reference ("15/2024") are not articles.
    text_wo_res = _RESOLUTION.sub(" ", text)
    articles = frozenset(n + (f"-{s.upper()}" if s else "") for n, s in _ARTICLE.findall(text_wo_res))
    return CitedRefs(articles, resolutions)
