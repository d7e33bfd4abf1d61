"""Answer-level evaluation: does the answer carry the fact the question asks for?

Each question of ``answers.jsonl`` has the key fact as a regular expression over the answer,
accent-folded and lower-cased (``3 dias uteis|three business days``), and the passages that hold
it; off-topic questions have none and must be refused. For every question the evaluation records
where the fact got to — the top-k passages, the prompt, the answer — whether the first citation
holds it, how the answer starts and ends, and how long ``RagPipeline.ask`` took; the report
gives each rate per language and overall.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import fold
from ..errors import CorpusError
from ..evidence import points_back
from ..sentences import sentence_spans

if TYPE_CHECKING:
    from ..pipeline import AskResult, RagPipeline

ANSWER_QUESTIONS = Path(__file__).with_name("answers.jsonl")
OFF_TOPIC = "off-topic"
_CLEAN_END = re.compile(r"[.!?…][\"'”’»)\]]*$")


@dataclass(frozen=True)
class AnswerQuestion:
    id: str
    split: str
    language: str
    category: str
    names_article: bool
    question: str
    fact: re.Pattern[str] | None  # None: off-topic, must be refused
    evidence: tuple[dict[str, Any], ...]

    def holds_fact(self, text: str) -> bool:
        return self.fact is not None and bool(self.fact.search(fold(text)))


def load_answer_questions(path: Path = ANSWER_QUESTIONS, split: str | None = None) -> list[AnswerQuestion]:
    """The questions of ``path`` (one JSON object a line), only ``split``'s unless it is None or "all"."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            fact = row["fact"]
            question = AnswerQuestion(
                id=str(row["id"]),
                split=str(row["split"]),
                language=str(row["language"]),
                category=str(row["category"]),
                names_article=bool(row.get("names_article", False)),
                question=str(row["question"]),
                fact=re.compile(fact) if fact else None,
                evidence=tuple(row.get("evidence") or ()),
            )
        except (json.JSONDecodeError, KeyError, TypeError, re.error) as exc:
            raise CorpusError(Path(path), f"line {lineno}: not an answer question ({exc})") from None
        if (question.fact is None) != (question.category == OFF_TOPIC):
            raise CorpusError(Path(path), f"line {lineno}: only off-topic questions go without a fact")
        if split in (None, "all") or question.split == split:
            out.append(question)
    return out


@dataclass(frozen=True)
class AnswerRecord:
    """What happened to one question."""

    id: str
    language: str
    category: str
    off_topic: bool
    refused: bool
    fact_in_top_k: bool
    fact_in_prompt: bool
    fact_in_answer: bool
    first_citation_holds_fact: bool
    copied_top_sentence: bool  # the answer came from the prompt's first context line
    quoted: bool  # the pipeline quoted the sentence instead of the generator's answer
    clean_start: bool
    clean_end: bool
    latency_ms: float
    answer: str
    sentences: int = 1  # the answer's sentences (one, or two with a close runner-up)
    dependent_start: bool = False  # the answer opens with "Assim,", "It…": it needs a sentence not shown


def judge(question: AnswerQuestion, result: AskResult, latency_ms: float) -> AnswerRecord:
    """The record of one answer. Only fields every version of ``AskResult`` has are required, so
    the same judge scores earlier code (the "before" runs in docs/BENCHMARKS.md)."""
    answer = result.answer
    lines = result.prompt.split("\n")[2:-1]
    source = getattr(result, "source", None)
    first = result.citations[0] if result.citations else None
    top = getattr(first, "sentences", None) or None
    return AnswerRecord(
        id=question.id,
        language=question.language,
        category=question.category,
        off_topic=question.fact is None,
        refused=not result.supported,
        fact_in_top_k=any(question.holds_fact(h.passage.text) for h in result.hits),
        fact_in_prompt=any(question.holds_fact(line) for line in lines),
        fact_in_answer=question.holds_fact(answer),
        first_citation_holds_fact=first is not None and question.holds_fact(first.text),
        copied_top_sentence=source is not None
        and top is not None
        and (source.number, source.start) == (1, top[0].start),
        quoted=bool(getattr(result, "quoted", False)),
        clean_start=bool(answer) and _starts_a_sentence(answer, result),
        clean_end=bool(answer) and bool(_CLEAN_END.search(answer)),
        latency_ms=latency_ms,
        answer=answer,
        sentences=len(getattr(result, "parts", ())) if hasattr(result, "parts") else int(bool(answer)),
        dependent_start=bool(answer) and points_back(_without_marker(answer)),
    )


def _without_marker(answer: str) -> str:
    """``answer`` without a leading ``[n]`` citation marker."""
    return re.sub(r"^\[\d+\]\s*", "", answer)


def _starts_a_sentence(answer: str, result: AskResult) -> bool:
    """Whether ``answer`` (after a leading ``[n]`` marker) opens like a sentence of a retrieved passage."""
    body = _without_marker(answer).removesuffix("…")
    opening = " ".join(body.split())[:24]
    for hit in result.hits:
        text = hit.passage.text
        for span in sentence_spans(text):
            if " ".join(text[span.start : span.end].split()).startswith(opening):
                return True
    return False


def run_answers(
    pipeline: RagPipeline,
    questions: Sequence[AnswerQuestion],
    strategy: str | None = None,
    k: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[AnswerRecord]:
    """Ask every question through ``pipeline.ask`` (as ``POST /v1/ask`` does) and judge it."""
    records = []
    options: dict[str, Any] = {"strategy": strategy}
    if k is not None:
        options["k"] = k
    for i, question in enumerate(questions):
        start = time.perf_counter()
        result = pipeline.ask(question.question, **options)
        records.append(judge(question, result, (time.perf_counter() - start) * 1000))
        if progress:
            progress(i + 1, len(questions))
    return records


RATES = (
    "fact_in_answer",
    "fact_in_prompt",
    "fact_in_top_k",
    "first_citation_holds_fact",
    "copied_top_sentence",
    "quoted",
    "clean_start",
    "clean_end",
    "dependent_start",
    "refused",
)


def summarize(records: Iterable[AnswerRecord]) -> dict[str, dict[str, float]]:
    """Rates per group ("all", "pt", "en", "off-topic"): in-domain rates over the in-domain
    questions (answered or not); ``refused`` for off-topic is the share correctly refused."""
    records = list(records)
    groups: dict[str, list[AnswerRecord]] = {
        "all": [r for r in records if not r.off_topic],
        "pt": [r for r in records if not r.off_topic and r.language == "pt"],
        "en": [r for r in records if not r.off_topic and r.language == "en"],
        OFF_TOPIC: [r for r in records if r.off_topic],
    }
    out: dict[str, dict[str, float]] = {}
    for name, group in groups.items():
        if not group:
            continue
        row: dict[str, float] = {"n": len(group)}
        answered = [r for r in group if not r.refused]
        for rate in RATES if name != OFF_TOPIC else ("refused",):
            row[rate] = sum(getattr(r, rate) for r in group) / len(group)
        if name != OFF_TOPIC and answered:
            row["clean_end_answered"] = sum(r.clean_end for r in answered) / len(answered)
            row["sentences_per_answer"] = sum(r.sentences for r in answered) / len(answered)
        latencies = [r.latency_ms for r in group]
        row["p50_ms"] = statistics.median(latencies)
        row["p95_ms"] = float(np.percentile(latencies, 95))
        out[name] = row
    return out


def markdown(summary: dict[str, dict[str, float]]) -> str:
    columns = ("n", *RATES, "sentences_per_answer", "p50_ms", "p95_ms")
    head = "| group | " + " | ".join(columns) + " |"
    rule = "|" + "---|" * (len(columns) + 1)
    rows = []
    for name, row in summary.items():
        cells = []
        for col in columns:
            value = row.get(col)
            if value is None:
                cells.append("")
            elif col == "n":
                cells.append(str(int(value)))
            elif col.endswith("_ms"):
                cells.append(f"{value:.0f}")
            else:
                cells.append(f"{value:.3f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def save_records(records: Sequence[AnswerRecord], summary: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"summary": summary, "records": [asdict(r) for r in records]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- tuning the evidence ranking


@dataclass(frozen=True)
class TuningResult:
    weights: dict[str, float]
    top1: float  # share of questions whose best-ranked sentence holds the fact
    top3: float
    default_top1: float  # the same with the weights the pipeline was made with
    default_top3: float
    questions: int  # in-domain questions whose top-k passages hold the fact at all


def sentence_signals(
    pipeline: RagPipeline, questions: Sequence[AnswerQuestion], strategy: str | None = None, k: int | None = None
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Per in-domain question: the signals of each candidate sentence (rows) and which of them
    hold the fact. Questions whose candidates hold it nowhere are left out: no weighting helps them."""
    from ..pipeline import DEFAULT_ASK_K

    names = list(pipeline.evidence_weights.to_dict())
    signals: list[np.ndarray] = []
    holds: list[np.ndarray] = []
    for question in questions:
        if question.fact is None:
            continue
        hits = pipeline.retriever(strategy).search(question.question, k=k or DEFAULT_ASK_K)
        ranked = pipeline.ranker().rank(question.question, hits)
        found = np.array([question.holds_fact(s.text) for s in ranked], dtype=bool)
        if found.any():
            signals.append(np.array([[s.features[n] for n in names] for s in ranked], dtype=np.float64))
            holds.append(found)
    return names, signals, holds


def top_rates(weights: np.ndarray, signals: Sequence[np.ndarray], holds: Sequence[np.ndarray]) -> tuple[float, float]:
    """Shares of questions whose first, and first three, sentences hold the fact (ties: retrieval order)."""
    top1 = top3 = 0
    for x, h in zip(signals, holds, strict=True):
        order = np.argsort(-(x @ weights), kind="stable")
        top1 += bool(h[order[0]])
        top3 += bool(h[order[:3]].any())
    n = max(len(signals), 1)
    return top1 / n, top3 / n


def fit_weights(
    signals: Sequence[np.ndarray], holds: Sequence[np.ndarray], l2: float = 0.1, steps: int = 3000, lr: float = 0.5
) -> np.ndarray:
    """Weights that put the probability of a softmax over each question's sentences on the
    sentences holding the fact (a conditional logit, fitted by gradient ascent with an L2 penalty)."""
    w = np.zeros(signals[0].shape[1])
    for _ in range(steps):
        grad = -l2 * w
        for x, h in zip(signals, holds, strict=True):
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            q = np.where(h, p, 0.0)
            q /= q.sum()
            grad += (q - p) @ x  # d/dw log sum_{j in facts} softmax(z)_j
        w += lr * grad / len(signals)
    return w


def tune_evidence_weights(
    pipeline: RagPipeline, questions: Sequence[AnswerQuestion], strategy: str | None = None, k: int | None = None
) -> TuningResult:
    """Fit the evidence weights on ``questions`` and compare them with the pipeline's own."""
    names, signals, holds = sentence_signals(pipeline, questions, strategy, k)
    if not signals:
        raise ValueError("no question's candidate sentences hold its fact")
    fitted = fit_weights(signals, holds)
    default = pipeline.evidence_weights.to_dict()
    best = top_rates(fitted, signals, holds)
    current = top_rates(np.array([default[n] for n in names]), signals, holds)
    weights = {n: round(float(v), 3) for n, v in zip(names, fitted, strict=True)}
    return TuningResult(weights, best[0], best[1], current[0], current[1], len(signals))
