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
import threading
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
    if text.isascii():  # nothing to normalise or strip: the common case, at C speed
        return text.lower()
    return _strip_marks(unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower()))


def _strip_marks(decomposed: str) -> str:
    if decomposed and max(decomposed) < _MARKS_BELOW:
        return decomposed.translate(_combining_marks())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# Every combining mark lies below U+20000 (Unicode 15: the last is U+1E94A); text with a higher
# code point takes the character-by-character path, so a later Unicode cannot break folding.
_MARKS_BELOW = "\U00020000"


@lru_cache(maxsize=1)
def _combining_marks() -> dict[int, None]:
    """``str.translate`` table deleting every combining mark (built once, ~40 ms)."""
    return dict.fromkeys(c for c in range(ord(_MARKS_BELOW)) if unicodedata.combining(chr(c)))


def detect_language(text: str) -> str:
    """Guess ``'pt'`` or ``'en'`` from stop words, typical suffixes and Portuguese diacritics
    (ties → ``'en'``). Short queries are the hard case: "consentimento do titular" has no
    language-specific stop word ("do" is both), but "-mento" is Portuguese."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    return _detect(lowered, _TOKEN.findall(fold(lowered)))


def _detect(lowered: str, words: list[str]) -> str:
    """:func:`detect_language` given NFKC-lower-cased text and the words of its folded form."""
    pt = en = 0
    for w in words:
        if w in stopwords.ALL:
            if w not in stopwords.ENGLISH:
                pt += 1
            elif w not in stopwords.PORTUGUESE:
                en += 1
        if len(w) > 4:
            pt += w.endswith(_PT_ENDINGS)
            en += w.endswith(_EN_ENDINGS)
    if not lowered.isascii():
        pt += 2 * len(_PT_MARKS.findall(lowered))
    return "pt" if pt > en else "en"


@dataclass(frozen=True)
class AnalyzerSettings:
    """What an index records so that queries are analysed exactly like its passages."""

    stem: bool = True
    remove_stopwords: bool = True
    version: int = ANALYZER_VERSION
    # Queries' plain words → the law's words (rag_server.glossary): "lgpd" or None. Queries only:
    # passages are analysed alike either way, so builds made before it load as None.
    glossary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Analyzer:
    """Turns text into index terms. Stateless apart from a term cache; safe across threads."""

    # Words remembered per language (word → term, or None when dropped); cleared when full.
    CACHE_SIZE = 500_000

    def __init__(self, settings: AnalyzerSettings | None = None) -> None:
        self.settings = settings or AnalyzerSettings()
        self._stemmers = {"pt": Stemmer.Stemmer("portuguese"), "en": Stemmer.Stemmer("english")}
        self._terms: dict[str, dict[str, str | None]] = {lang: {} for lang in LANGUAGES}
        self._lock = threading.Lock()  # PyStemmer objects are not thread-safe

    def tokens(self, text: str, language: str | None = None) -> list[str]:
        """Index terms of ``text``; ``language`` picks the stemmer (detected when None)."""
        if text.isascii():  # NFKC and accent folding leave ASCII as it is
            lowered = folded = text.lower()
        else:
            lowered = unicodedata.normalize("NFKC", text).lower()
            folded = _strip_marks(unicodedata.normalize("NFKD", lowered))  # = fold(text)
        words = _TOKEN.findall(folded)
        if language in LANGUAGES:
            lang = language
        else:  # detect_language(text), reusing the words when folding twice changes nothing
            lang = _detect(lowered, words if lowered.isascii() else _TOKEN.findall(fold(lowered)))
        terms = self._terms[lang]
        try:
            found = list(map(terms.__getitem__, words))
        except KeyError:  # a word not seen before in this language
            found = [self._cached_term(terms, word, lang) for word in words]
        return [term for term in found if term is not None]

    def _cached_term(self, terms: dict[str, str | None], word: str, language: str) -> str | None:
        term = terms.get(word, _MISSING)
        if term is _MISSING:
            term = self._term(word, language)
            if len(terms) >= self.CACHE_SIZE:
                terms.clear()
            terms[word] = term
        return term

    def _term(self, word: str, language: str) -> str | None:
        """The index term of one folded word, or None when it is dropped."""
        if self.settings.remove_stopwords and word in stopwords.ALL:
            return None
        if len(word) == 1 and not word.isdigit():
            return None
        if not self.settings.stem or word[0].isdigit():
            return word
        if language == "pt":
            word = _restore_portuguese_suffix(word)
        with self._lock:
            stem = self._stemmers[language].stemWord(word)
        return fold(stem)


_MISSING: Any = object()


def _restore_portuguese_suffix(word: str) -> str:
    for suffix, replacement, min_len in _PT_SUFFIXES:
        if len(word) >= min_len and word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    return word
