"""Evidence chosen sentence by sentence: the sentences of the retrieved passages, ranked against
the question.

Retrieval finds the passage that holds a fact; an answer needs the sentence that states it, and
a passage holds several. Each sentence of the top-k passages (split by ``rag_server.sentences``)
gets a score that adds up, with weights chosen on the dev split of the answer set
(``rag-server eval-answers --tune``):

* ``lexical``: the share of the question's terms (the project's analyzer, in the sentence's
  language) that the sentence holds, each weighted by its inverse document frequency in the
  build, so "prazo" counts for less than "incidente"; the words that ask for a date ("em que
  dia") are left out, as they say what kind of fact is asked, not what it is about;
* ``dense``: cosine similarity between the question and the sentence, by the build's own
  embedding model (when it has one; it embeds each new sentence at query time, so it is left
  out when its weight is 0), and ``passage_dense``: the same for the sentence's whole passage,
  read from the dense index (no model call);
* ``answer_type``: the question asks for a duration ("prazo", "how long"), an amount ("valor",
  "how much"), a count ("quantos", "how many"), a date ("quando entrou em vigor"), a body, a
  list, a definition ("o que significa") or a yes/no, and the sentence holds one that the
  question does not name already (the ANPD does not answer "who in the ANPD…"); the numbers of
  articles and acts ("art. 52", "Lei 13.709/2018") are neither counts nor dates, and a count
  counts fully when the thing counted follows it ("24 cláusulas" for "quantas cláusulas");
* ``passage``: the reciprocal rank of the sentence's passage in the retrieval, and
  ``passage_score``: its retrieval score over the best one's (how far behind the top it is);
* ``heading``: the share of the question's terms in the passage's title and section heading
  ("Art. 48 — Comunicação de incidente"), which name the topic that a sentence often leaves
  implicit;
* ``language``: the sentence is in the question's language, so that a Portuguese question is
  answered in Portuguese when the corpus has both;
* ``dependent``: the sentence opens with a word that points back to the sentence before it
  ("Assim, …", "Por isso …", "It has …"); shown alone as an answer, it leaves the reader asking
  what "it" or "thus" refers to, so it counts against (:func:`points_back`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .analysis import Analyzer, detect_language, fold
from .passage import Passage
from .prompt import one_line
from .sentences import Span, enumeration, sentence_spans

if TYPE_CHECKING:  # annotations only
    from .retrieval.base import Hit


# ----------------------------------------------------------------------------- answer types

_NUMBER_WORDS = (
    r"um|uma|dois|duas|tres|quatro|cinco|seis|sete|oito|nove|dez|doze|quinze|vinte|trinta|quarenta|"
    r"sessenta|noventa|cem|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|"
    r"thirty|forty|sixty|ninety|hundred"
)
_QUANTITY = rf"(?:\d+(?:[.,]\d+)*|{_NUMBER_WORDS})"
_COUNT = rf"(?:\d+(?:[.,]\d+)*|{_NUMBER_WORDS.removeprefix('um|uma|')})"
"""A quantity that can answer "how many": "um"/"uma" are articles far more often than counts
("um órgão consultivo"); "one" stays, as English uses "a" for the article."""

ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    # kind: (a question that asks for it, a sentence that holds one); both over folded text.
    "duration": (
        re.compile(
            r"\bprazos?\b|quanto tempo|quantos dias|quantas horas|quantos meses|quantos anos|por quanto|"
            r"ate quando|em quanto|how long|how many (?:business |working )?(?:days|hours|months|years)|"
            r"deadline|how soon|how quickly|within how|time limit|how much time|period"
        ),
        re.compile(
            rf"\b{_QUANTITY}[\s-]+(?:\w+\s+)?(?:dias?|horas?|meses|mes|anos?|semanas?|days?|hours?|months?|years?|"
            r"weeks?)\b|imediatamente|immediately|without delay|sem demora"
        ),
    ),
    "amount": (
        re.compile(
            r"\bvalor|\bmultas?\b|quanto (?:custa|pode|e)|percentu|porcentagem|how much|maximum|amount|"
            r"percent|\bfines?\b|\bcap\b|\blimite"
        ),
        re.compile(r"r\$|%|por cento|percent|milh|million|bilh|billion|\breais\b|faturamento|revenue|turnover"),
    ),
    "count": (
        re.compile(r"\bquant[oa]s\b|how many|numero de|number of"),
        re.compile(rf"\b{_COUNT}\b"),
    ),
    "date": (
        re.compile(
            r"desde quando|em que (?:data|ano|dia)|que dia|which year|what date|when did|em vigor|in force|"
            r"vigencia|entrou|took effect|take effect|publicad|published|(?:comec\w*|passou|passa) a valer|"
            r"a partir de quando|quando (?:\w+ ){0,3}(?:saiu|sairam|foi (?:criad|editad|aprovad)\w*)|since when|"
            r"when (?:\w+ ){0,3}(?:start\w*|beg[au]n) to apply"
        ),
        re.compile(
            r"\b(?:19|20)\d\d\b|janeiro|fevereiro|marco|abril|maio|junho|julho|agosto|setembro|outubro|"
            r"novembro|dezembro|january|february|march|april|may|june|july|august|september|october|"
            r"november|december"
        ),
    ),
    "who": (
        re.compile(
            r"^\W*quem\b|\bquem (?:e|sao|pode|deve|decide|fiscaliza|aplica|abre|define|edita)\b|"
            r"\b(?:qual|que|quais) (?:orgaos?|autoridades?|entidades?|instituic\w+|instrumentos?)\b|"
            r"^\W*who\b|\bwho (?:is|are|can|must|decides|enforces|opens|sets|issues)\b|"
            r"\bwhich (?:\w+ )?(?:body|bodies|authority|authorities|entity|entities|institution|instrument|law)\b|"
            r"by whom"
        ),
        re.compile(
            r"\b(?:anpd|autoridade nacional|national authority|presidente|president|ministr\w+|minister|conselho|"
            r"council|inep|congresso|congress|senado|senate|tribunal|court|lei (?:n[o.º ]*)?\d|law \d|"
            r"medida provisoria|provisional measure|decreto|decree|resolucao|resolution)"
        ),
    ),
    "list": (
        re.compile(
            r"^\W*quais\b|\bquais (?:sao|as|os|dados|direitos|hipoteses|requisitos|punicoes|sancoes)\b|"
            r"\b(?:o que|what) .{0,60}\b(?:conter|contem|exige|inclui|abrange|list\w*|contain|include|state|"
            r"require|weigh|consider\w*)\b|what (?:options|rights|are the|kinds|types)|which (?:rights|data|options)"
        ),
        re.compile(r"(?:^|[\s(:;])(?:i|ii|iii|iv|v|vi)\s*[\u2013\u2014)-]|\(i\)|\(a\)|;.*;|:.*,.*,"),
    ),
    "definition": (
        re.compile(
            r"^\W*(?:o que (?:e|sao|significa|quer dizer)|what (?:is|are|does)|in plain (?:terms|words)|"
            r"em (?:termos )?simples)\b|\bdefini|\bdefined?\b|\bsignifica\b|\bmeans?\b"
        ),
        re.compile(
            r"\bdefine\b.{1,60}\bcomo\b|\bdefines?\b.{1,60}\bas\b|definid[oa]s? como|defined as|entende-se por|"
            r"considera-se|(?<!nao )\bsignifica\b|\bconsiste\b|(?<!not )\bmeans\b|refers to|\bconsists? (?:of|in)\b|"
            r"\bis (?:called|known as)\b|\bchama-se|denomina"
        ),
    ),
    "yesno": (
        re.compile(
            r"(?:^|[.?!:]\s+)\W*(?:posso|pode|podemos|preciso|precisamos|devo|devemos|tenho que|"
            r"sou obrigad\w*|somos obrigad\w*|"
            r"e obrigatori\w*|e permitid\w*|e possivel|a lei|a lgpd|o art|existe|ha |vale|conta|"
            r"can|could|may|must|do|does|did|is|are|should|has|have)\b"
        ),
        re.compile(
            r"\b(?:nao|nem|nunca|somente|apenas|so pode|pode|podem|deve|devem|obrigad\w*|vedad\w*|permit\w*|"
            r"proib\w*|exige|dispensad\w*|not|never|only|may|must|cannot|required|allowed|prohibited|exempt\w*)\b"
        ),
    ),
}
"""The answer types a question can ask for, in the order they are tried: "quantos dias" is a
duration before it is a count, a deadline question that starts "Posso" asks for the deadline."""


def answer_type(question: str) -> str | None:
    """The kind of fact ``question`` asks for, or None."""
    folded = fold(question)
    for kind, (asks, _) in ANSWER_TYPES.items():
        if asks.search(folded):
            return kind
    return None


CUE_KINDS = ("date",)
"""Answer types whose question words say what kind of fact is asked, not what it is about: a
sentence sharing "dia" with "em que dia…?" is no nearer the answer ("…multa por dia de atraso")."""


def answer_cue(question: str, kind: str | None) -> str:
    """The words of ``question`` (folded) that ask for ``kind`` ("em que dia", "how many"), or ""."""
    if kind is None:
        return ""
    found = ANSWER_TYPES[kind][0].search(fold(question))
    return found.group(0) if found else ""


_CITATION = re.compile(
    # Over folded text: numbers that name a provision or an act, never a count or a date of the
    # answer: "art. 52", "arts. 33 a 36", "§ 1o", "lei no 13.709/2018", "no 15/2024", "res. 4/2023".
    r"\barts?\.?\s*\d+(?:-?[a-z]\b)?o?(?:\s*(?:,|a|e|to|and)\s*\d+(?:-?[a-z]\b)?o?)*"
    r"|§+\s*\d+o?"
    r"|\b(?:leis?|laws?|decretos?|decrees?|resolucao|resolution|res|mp)\b\.?\s*(?:complementar\s*|cd/anpd\s*)?"
    r"(?:no?\.?\s*)?\d[\d.,]*(?:/\d{2,4})?"
    r"|\bno?\.?\s*\d+/\d{2,4}\b"
    r"|\b\d{1,3}(?:\.\d{3})+/\d{4}\b"
)
_MEASURE = re.compile(
    # A run of quantities ending in a unit of time, money or share: "2, 3, 4, 5 e 6 anos", "R$ 12.000", "2%".
    rf"(?:{_QUANTITY}\s*(?:,|\be\b|\band\b|\bou\b|\bor\b|\ba\b|\bto\b)\s*)*{_QUANTITY}[\s-]+(?:\w+\s+)?"
    r"(?:dias?|horas?|meses|mes|anos?|semanas?|days?|hours?|months?|years?|weeks?)\b"
    r"|r\$\s*[\d.,]+|[\d.,]+\s*(?:%|por cento|percent)"
)
_NEW_TO_THE_QUESTION = ("who", "amount", "count", "date")
"""Answer types whose match must not be in the question already: "Quem dentro da ANPD decide…"
is not answered by a sentence naming the ANPD, nor "valor … faturamento" by one that says
"faturamento"."""


def holds_answer_type(sentence: str, kind: str | None, question: str = "") -> bool:
    """Whether ``sentence`` holds the kind of fact ``question`` asks for (see :func:`answer_type_match`)."""
    return answer_type_match(sentence, kind, question) > 0


UNNAMED_COUNT = 0.5
"""How much a count counts when the question names what it counts ("quantas cláusulas") and the
sentence's number is not followed by it: "It has 23 representatives" may still answer "how many
seats", but "24 cláusulas" answers "quantas cláusulas" before "um modelo de 2024" does."""


def answer_type_match(sentence: str, kind: str | None, question: str = "") -> float:
    """How well ``sentence`` holds the kind of fact ``question`` asks for: 1, or 0 when it holds
    none; a count not followed by the thing counted gets :data:`UNNAMED_COUNT`. Counts and dates
    ignore the numbers of legal citations ("art. 52", "Lei 13.709/2018"); a person, body,
    amount, count or date counts only when the question does not name it already."""
    if kind is None:
        return 0.0
    text = fold(sentence)
    if kind in ("count", "date"):
        text = _CITATION.sub(" ", text)
    if kind == "count":  # "mandatos de 2, 3 e 4 anos", "R$ 12.000", "2%": a duration or an amount, not a count
        text = _MEASURE.sub(" ", text)
    asked, counted = _asked(question, kind)
    best = 0.0
    for match in ANSWER_TYPES[kind][1].finditer(text):
        if asked and match.group(0).strip() in asked:
            continue
        if counted is None or _names_after(text, match.end(), counted):
            return 1.0
        best = UNNAMED_COUNT
    return best


_COUNTED = re.compile(r"\b(?:quant[oa]s|how many|numero de|number of)\s+(\w+)")
_NOT_A_NOUN = frozenset(["sao", "ha", "tem", "existem", "e", "is", "are", "there", "does", "do", "did", "have", "has"])


@lru_cache(maxsize=256)
def _asked(question: str, kind: str) -> tuple[str, str | None]:
    """``question`` folded when ``kind``'s answer must be new to it (else ""), and the thing a
    count question counts: computed once per question, not once per candidate sentence."""
    asked = fold(question) if kind in _NEW_TO_THE_QUESTION else ""
    return asked, _counted_noun(asked) if kind == "count" else None


def _counted_noun(folded_question: str) -> str | None:
    """The thing a count question counts, as a stem: "quantas cláusulas tem…" → "claus"."""
    found = _COUNTED.search(folded_question)
    if found is None or found.group(1) in _NOT_A_NOUN:
        return None
    return found.group(1)[:5]


def _names_after(text: str, at: int, stem: str) -> bool:
    """Whether one of the two words after ``text[at]`` starts with ``stem`` ("24 cláusulas",
    "23 full members")."""
    return any(word.startswith(stem) for word in text[at:].split()[:2])


_POINTS_BACK = re.compile(
    r"^(?:assim|com base nisso|nesse caso|neste caso|nesses casos|isso|isto|essa|esse|esses|essas|portanto|"
    r"alem disso|por isso|dessa forma|desse modo|ou seja|tambem|ainda|"
    r"this|that|these|those|therefore|thus|in that case|in this case|it|they|such|also|hence|for that reason)\b"
)


def points_back(sentence: str) -> bool:
    """Whether ``sentence`` opens with a word that refers to what came before it ("Por isso, …",
    "These articles…", "It has…"): a sentence a reader cannot take on its own. Not "so": folded,
    it is also the Portuguese "só" ("Só quando…"), which opens sentences that stand alone."""
    return _opens_pointing_back(fold(sentence))


def _opens_pointing_back(folded: str) -> bool:
    """:func:`points_back` of an already folded sentence (the ranker folds each candidate once)."""
    return bool(_POINTS_BACK.match(folded.lstrip()))


# ----------------------------------------------------------------------------- units

ABRIDGE_OVER = 400
"""Characters above which a sentence that lists items competes as its items instead. The shipped
generator reads 768 characters: a question, the prompt's frame and one line of about 450
characters. A longer sentence never fits beside the question, so the answer fell to another,
weaker sentence; Art. 52's sanctions or Res. 4/2023's mitigating factors are such sentences,
and a question asks about one of their items."""
ELISION = "[...]"
"""Marks the items left out between a lead-in and the item quoted (ASCII: the generator's
vocabulary has no "…")."""


def evidence_units(text: str, sentence: Span) -> list[tuple[Span, str]]:
    """What the sentence ``text[sentence]`` competes as, each with its span and its text on one line:
    itself, or, when it is longer than :data:`ABRIDGE_OVER` characters and lists items, each item
    quoted after the lead-in ("A multa é reduzida quando incidirem atenuantes: [...] (IV) 5% por
    cooperação ou boa-fé."). An item's span is the item itself, the part of the passage that an
    answer quoting the unit points to; an item that did not end the sentence ends with a full stop
    in place of its ";"."""
    whole = [(sentence, one_line(text[sentence.start : sentence.end]))]
    if sentence.end - sentence.start <= ABRIDGE_OVER:
        return whole
    found = enumeration(text, sentence)
    if found is None:
        return whole
    lead = one_line(text[found.lead.start : found.lead.end])
    units = []
    for index, item in enumerate(found.items):
        body = one_line(text[item.start : item.end])
        if body[-1] not in ".!?…":
            body += "."
        units.append((item, f"{lead} {body}" if index == 0 else f"{lead} {ELISION} {body}"))
    return units


# ----------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class EvidenceWeights:
    """How much each signal counts in a sentence's score. Fitted on the answer set's dev split
    with the e5-small build and its served retrieval (``rag-server eval-answers --split dev
    --tune``; the L2 penalty, 0.1, chosen by 5-fold cross-validation on dev; docs/BENCHMARKS.md).
    ``dense`` is 0: fitted with it, the fact's sentence came first for 0.585 of dev and 0.547 of
    test questions (those whose candidates hold it), the same as without it, and it costs an
    embedding of every new sentence per question (2.5 s a question on the busy 2-core machine).
    ``passage`` and ``heading`` are slightly negative: they only offset ``passage_score`` and
    ``lexical``, which already reward the top hit and the question's words."""

    lexical: float = 5.155
    dense: float = 0.0
    answer_type: float = 2.581
    passage: float = -0.692
    passage_score: float = 7.537
    passage_dense: float = 0.853
    heading: float = -0.186
    language: float = 0.849
    novelty: float = 3.153
    dependent: float = -1.0
    """Not fitted with the others but swept alone on dev with them fixed (0, -0.5, -1, -1.5, -2,
    -3): at -1 dev fact in the answer 0.691 → 0.706 and answers opening with such a word 5 → 3 of
    68; test facts unchanged, such openings 1 → 0. A conditional-logit refit of every weight on dev
    gives it -1.022 (docs/BENCHMARKS.md, session 12)."""

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class EvidenceSentence:
    """One sentence of a retrieved passage and why it ranks where it does.

    ``span`` points into ``passage.text``; ``text`` is that slice on one line.
    """

    passage: Passage
    hit_rank: int
    span: Span
    text: str
    score: float
    features: Mapping[str, float]


SentenceEncoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Texts → unit-length rows (passages' side of the build's embedding model)."""


class SentenceRanker:
    """Ranks the sentences of retrieved passages against a question.

    ``idf(term)`` weighs a term (unknown terms count for nothing); ``encode_sentences`` and
    ``query_vector`` give the dense signal, which is left out when either is None.
    """

    def __init__(
        self,
        analyzer: Analyzer,
        idf: Callable[[str], float],
        weights: EvidenceWeights | None = None,
        encode_sentences: SentenceEncoder | None = None,
        query_vector: Callable[[str], npt.NDArray[np.float32]] | None = None,
        passage_similarity: Callable[[str, list[str]], list[float]] | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.idf = idf
        self.weights = weights or EvidenceWeights()
        self.encode_sentences = encode_sentences
        self.query_vector = query_vector
        self.passage_similarity = passage_similarity

    def rank(self, question: str, hits: Sequence[Hit]) -> list[EvidenceSentence]:
        """Every distinct sentence of ``hits``, best first (ties: retrieval order, then reading order)."""
        candidates: list[tuple[int, Passage, Span, str, str]] = []  # (hit, passage, span, text, folded text)
        seen: set[str] = set()
        for position, hit in enumerate(hits):
            passage = hit.passage
            for whole in sentence_spans(passage.text):
                for span, text in evidence_units(passage.text, whole):
                    key = fold(text)
                    if key in seen:
                        continue
                    seen.add(key)
                    candidates.append((position, passage, span, text, key))
        if not candidates:
            return []

        asked_language = detect_language(question)
        kind = answer_type(question)
        question_terms: dict[str, dict[str, float]] = {}  # sentence language → {term: idf}
        dense = self._dense(question, [c[3] for c in candidates])
        best_score = max((float(h.score) for h in hits), default=0.0)
        similar = self.passage_similarity(question, [h.passage.id for h in hits]) if self.passage_similarity else []
        if len(similar) != len(hits):
            similar = [0.0] * len(hits)
        headings: dict[str, float] = {}  # passage id → heading overlap
        w = self.weights.to_dict()
        ranked: list[tuple[float, int, EvidenceSentence]] = []
        for order, (position, passage, span, text, folded) in enumerate(candidates):
            language = passage.language
            if language not in question_terms:
                cue = set(self.analyzer.tokens(answer_cue(question, kind), language)) if kind in CUE_KINDS else set()
                terms_asked = set(self.analyzer.tokens(question, language)) - cue
                question_terms[language] = {t: self.idf(t) for t in terms_asked}
            asked = question_terms[language]
            if passage.id not in headings:
                heading = self.analyzer.tokens(f"{passage.title} {passage.section}", language)
                headings[passage.id] = _overlap(asked, heading)
            score = float(hits[position].score)
            terms = self.analyzer.tokens(text, language)
            features = {
                "lexical": _overlap(asked, terms),
                "dense": float(dense[order]) if dense is not None else 0.0,
                "answer_type": answer_type_match(text, kind, question),
                "passage": 1.0 / (position + 1),
                "passage_score": score / best_score if best_score > 0 else 0.0,
                "passage_dense": similar[position],
                "heading": headings[passage.id],
                "language": 1.0 if language == asked_language else 0.0,
                "novelty": _novelty(asked, terms),
                "dependent": 1.0 if _opens_pointing_back(folded) else 0.0,
            }
            total = sum(w[name] * value for name, value in features.items())
            sentence = EvidenceSentence(passage, position + 1, span, text, total, features)
            ranked.append((-total, order, sentence))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in ranked]

    def _dense(self, question: str, texts: list[str]) -> npt.NDArray[np.float32] | None:
        if self.encode_sentences is None or self.query_vector is None or self.weights.dense == 0:
            return None
        return self.encode_sentences(texts) @ self.query_vector(question)


def _overlap(asked: Mapping[str, float], terms: Sequence[str]) -> float:
    """The idf-weighted share of the question's terms found among ``terms``."""
    total = sum(asked.values())
    if total <= 0:
        return 0.0
    held = set(terms)
    return sum(v for t, v in asked.items() if t in held) / total


def _novelty(asked: Mapping[str, float], terms: Sequence[str]) -> float:
    """The share of a sentence's terms that the question does not hold: an answer adds to the
    question's words, while a sentence that only restates the topic echoes them."""
    if not terms:
        return 0.0
    return sum(1 for t in terms if t not in asked) / len(terms)


def okapi_idf(doc_freq: int, n_docs: int) -> float:
    """BM25's idf, never negative: a term in every passage still counts for a little."""
    return math.log(1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
