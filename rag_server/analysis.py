"""Text analysis shared by the keyword and BM25 indexes (documents and queries alike).

Steps, in order, each for a reason:

1. Unicode NFKC, so compatibility forms (ligatures, full-width letters, ``º``) compare equal.
2. Lower-casing and accent folding, so ``ação`` and ``acao`` (a query typed without accents)
   become the same string.
3. Tokens: runs of letters/digits; an article suffix such as ``55-J`` stays one token.
4. Stop words of both languages removed (mixed-language questions are common).
5. Stemming by language with Snowball (PyStemmer). Snowball's Portuguese stemmer is sensitive to
   accents and leaves ``-ões``/``-ão`` plurals apart, so folded Portuguese words first get their
   common suffix restored and plurals mapped to the singular (``acoes`` → ``ação``); the stem is
   folded again afterwards. Both ``comunicação`` and ``comunicacao`` stem to ``comunic``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import Stemmer

from . import stopwords

LANGUAGES = ("pt", "en")
ANALYZER_VERSION = 1

_TOKEN = re.compile(r"\d+-[a-z](?![a-z0-9])|[^\W_]+")
_PT_ENDINGS = (
    "cao",
    "coes",
    "mento",
    "mentos",
    "dade",
    "dades",
    "agem",
    "encia",
    "ario",
    "arios",
    "avel",
    "ivel",
    "veis",
    "oes",
    "ados",
    "adas",
    "idos",
    "idas",
    "ante",
)
_EN_ENDINGS = ("tion", "tions", "ing", "ness", "ity", "ies", "ed", "ly", "ship", "ment", "ments", "ers")
_PT_MARKS = re.compile(r"[ãõçáéíóúâêô]")

# Folded Portuguese suffixes -> the accented form Snowball expects. Order matters: the first
# match wins, longer suffixes first. Plurals in -ões/-ães map to the singular -ão.
_PT_SUFFIXES: tuple[tuple[str, str, int], ...] = (
    # (folded suffix, replacement, minimum word length)
    ("coes", "ção", 5),
    ("cao", "ção", 4),
    ("soes", "são", 5),
    ("sao", "são", 5),
    ("oes", "ão", 5),
    ("aes", "ão", 5),
    ("aos", "ão", 5),
    ("ao", "ão", 4),
    ("veis", "vel", 6),
    ("ais", "al", 6),
)


def fold(text: str) -> str:
    """NFKC + lower-case + strip combining accents: ``'Ação'`` → ``'acao'``."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def detect_language(text: str) -> str:
    """Guess ``'pt'`` or ``'en'`` from stop words, typical suffixes and Portuguese diacritics
    (ties → ``'en'``). Short queries are the hard case: "consentimento do titular" has no
    language-specific stop word ("do" is both), but "-mento" is Portuguese."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    words = _TOKEN.findall(fold(lowered))
    pt = sum(w in stopwords.PORTUGUESE and w not in stopwords.ENGLISH for w in words)
    en = sum(w in stopwords.ENGLISH and w not in stopwords.PORTUGUESE for w in words)
    pt += sum(len(w) > 4 and w.endswith(_PT_ENDINGS) for w in words)
    en += sum(len(w) > 4 and w.endswith(_EN_ENDINGS) for w in words)
    pt += 2 * len(_PT_MARKS.findall(lowered))
    return "pt" if pt > en else "en"


@dataclass(frozen=True)
class AnalyzerSettings:
    """What an index records so that queries are analysed exactly like its passages."""

    stem: bool = True
    remove_stopwords: bool = True
    version: int = ANALYZER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Analyzer:
    """Turns text into index terms. Stateless apart from a stem cache; safe across threads."""

    def __init__(self, settings: AnalyzerSettings | None = None) -> None:
        self.settings = settings or AnalyzerSettings()
        self._stemmers = {"pt": Stemmer.Stemmer("portuguese"), "en": Stemmer.Stemmer("english")}
        # PyStemmer objects are not thread-safe; a cached pure function over the word is.
        self._stem = lru_cache(maxsize=200_000)(self._stem_uncached)

    def tokens(self, text: str, language: str | None = None) -> list[str]:
        """Index terms of ``text``; ``language`` picks the stemmer (detected when None)."""
        lang = language if language in LANGUAGES else detect_language(text)
        words = _TOKEN.findall(fold(text))
        if self.settings.remove_stopwords:
            words = [w for w in words if w not in stopwords.ALL]
        words = [w for w in words if len(w) > 1 or w.isdigit()]
        if not self.settings.stem:
            return words
        return [self._stem(w, lang) for w in words]

    def _stem_uncached(self, word: str, language: str) -> str:
        if word[0].isdigit():
            return word
        if language == "pt":
            word = _restore_portuguese_suffix(word)
        return fold(self._stemmers[language].stemWord(word))


def _restore_portuguese_suffix(word: str) -> str:
    for suffix, replacement, min_len in _PT_SUFFIXES:
        if len(word) >= min_len and word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    return word
