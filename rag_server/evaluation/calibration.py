"""Calibrating the "supported" threshold of ``/v1/ask`` (``rag-server calibrate``).

Evidence = the highest cosine similarity between the question and a retrieved passage
(``RagPipeline.evidence``). In-domain questions should be answered; off-topic ones should get
``supported: false``. A wrong refusal costs a compliance user more than a weakly supported
answer that still shows its citations, so the threshold chosen on dev is the highest one that
still answers at least ``min_answered`` (95%) of in-domain dev questions; it is then checked on
the test split.

In-domain questions come from every question set the project has, because they are asked
differently: the project's evaluation set (analysts, a third name an article), its natural split
(non-lawyers, plain words: their evidence scores lower) and the answer set's in-domain
questions. Off-topic ones: ``offtopic.jsonl`` (everyday questions and near-misses such as other
Brazilian laws) and the answer set's off-topic questions. Calibrated on the analysts' questions
alone, the threshold refused one natural question in five (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..pipeline import DEFAULT_ASK_K, RagPipeline
from .answers import load_answer_questions
from .datasets import NATURAL_QUESTIONS, EvalSet, load_project_questions

if TYPE_CHECKING:
    from ..support import SupportClassifier

OFFTOPIC = Path(__file__).with_name("offtopic.jsonl")
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class LabelledQuestion:
    """A question, the set it comes from, and whether it should be answered."""

    text: str
    source: str
    in_domain: bool


@dataclass(frozen=True)
class SplitScores:
    """Evidence scores of one split's in-domain and off-topic questions; ``sources`` keeps each
    set's own scores (set name → (in domain?, scores))."""

    split: str
    in_domain: list[float]
    off_topic: list[float]
    sources: dict[str, tuple[bool, list[float]]] = field(default_factory=dict)

    def rates(self, threshold: float) -> tuple[float, float]:
        """Share of in-domain questions answered and of off-topic ones refused at ``threshold``."""
        return handled(self.in_domain, True, threshold), handled(self.off_topic, False, threshold)


def handled(scores: Sequence[float], in_domain: bool, threshold: float) -> float:
    """Share of ``scores`` handled right at ``threshold``: answered when in domain, else refused."""
    right = sum((s >= threshold) == in_domain for s in scores)
    return right / len(scores)


@dataclass(frozen=True)
class Calibration:
    threshold: float  # chosen on dev
    strategy: str
    k: int
    splits: list[SplitScores]
    chosen: bool = True  # chosen on dev (False: a threshold the caller gave, scored)

    def markdown(self) -> str:
        lines = [
            f"evidence = max cosine(question, top-{self.k} passages), strategy {self.strategy}",
            "| split | in-domain n | median | off-topic n | median | answered in-domain | refused off-topic |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in self.splits:
            answered, refused = s.rates(self.threshold)
            lines.append(
                f"| {s.split} | {len(s.in_domain)} | {statistics.median(s.in_domain):.3f} | {len(s.off_topic)} "
                f"| {statistics.median(s.off_topic):.3f} | {answered:.1%} | {refused:.1%} |"
            )
        if any(len(s.sources) > 1 for s in self.splits):
            lines += ["", "| split | question set | n | answered (in-domain) or refused (off-topic) |"]
            lines.append("| --- | --- | ---: | ---: |")
            for s in self.splits:
                for name, (in_domain, scores) in s.sources.items():
                    rate, what = handled(scores, in_domain, self.threshold), "answered" if in_domain else "refused"
                    lines.append(f"| {s.split} | {name} | {len(scores)} | {rate:.1%} {what} |")
        if self.chosen:
            lines.append(f"\nthreshold (chosen on dev): {self.threshold:.4f}  -> RAG_SUPPORT_THRESHOLD")
        else:
            lines.append(f"\nthreshold (given): {self.threshold:.4f}")
        return "\n".join(lines)


def evidence_scores(pipeline: RagPipeline, questions: list[str], strategy: str, k: int) -> list[float]:
    retriever = pipeline.retriever(strategy)
    return [pipeline.evidence(q, retriever.search(q, k=k)) for q in questions]


def load_offtopic(path: Path = OFFTOPIC) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def labelled_questions(split: str) -> list[LabelledQuestion]:
    """Every question set's questions of ``split``, labelled in domain or not."""
    found = [LabelledQuestion(q.text, "project", True) for q in load_project_questions().split(split).queries]
    natural = load_project_questions(NATURAL_QUESTIONS).split(split).queries
    found += [LabelledQuestion(q.text, "natural", True) for q in natural]
    answers = load_answer_questions(split=split)
    found += [LabelledQuestion(q.question, "answers", True) for q in answers if q.fact is not None]
    found += [LabelledQuestion(q.question, "answers, off-topic", False) for q in answers if q.fact is None]
    found += [LabelledQuestion(r["question"], "offtopic", False) for r in load_offtopic() if r["split"] == split]
    return found


def given_questions(questions: EvalSet, offtopic: list[dict[str, str]], split: str) -> list[LabelledQuestion]:
    """A caller's own sets: ``questions`` in domain, ``offtopic`` not."""
    found = [LabelledQuestion(q.text, "questions", True) for q in questions.queries if q.split == split]
    return found + [LabelledQuestion(r["question"], "off-topic", False) for r in offtopic if r["split"] == split]


def split_scores(
    pipeline: RagPipeline, split: str, questions: Sequence[LabelledQuestion], strategy: str, k: int
) -> SplitScores:
    scores = evidence_scores(pipeline, [q.text for q in questions], strategy, k)
    sources: dict[str, tuple[bool, list[float]]] = {}
    for question, score in zip(questions, scores, strict=True):
        sources.setdefault(question.source, (question.in_domain, []))[1].append(score)
    in_domain = [s for q, s in zip(questions, scores, strict=True) if q.in_domain]
    off_topic = [s for q, s in zip(questions, scores, strict=True) if not q.in_domain]
    return SplitScores(split, in_domain, off_topic, sources)


def calibrate(
    pipeline: RagPipeline,
    strategy: str = "hybrid-convex",
    k: int = DEFAULT_ASK_K,
    min_answered: float = 0.95,
    questions: EvalSet | None = None,
    offtopic: list[dict[str, str]] | None = None,
    threshold: float | None = None,
) -> Calibration:
    """Score both splits, choose the threshold on dev. With neither ``questions`` nor
    ``offtopic``, every question set of the project is used (:func:`labelled_questions`);
    otherwise the given ones (the project's evaluation set or ``offtopic.jsonl`` for the other).
    A given ``threshold`` is scored as it is instead (what would it answer and refuse?)."""
    splits = []
    for split in SPLITS:
        if questions is None and offtopic is None:
            labelled = labelled_questions(split)
        else:
            own = questions or load_project_questions()
            labelled = given_questions(own, load_offtopic() if offtopic is None else offtopic, split)
        splits.append(split_scores(pipeline, split, labelled, strategy, k))
    for scores in splits:
        if not scores.in_domain or not scores.off_topic:
            raise ValueError(f"the {scores.split} split needs in-domain and off-topic questions to calibrate on")
    if threshold is not None:
        return Calibration(threshold, strategy, k, splits, chosen=False)
    dev = splits[0]
    best = max(t for t in sorted(set(dev.in_domain + dev.off_topic)) if dev.rates(t)[0] >= min_answered)
    return Calibration(setting_for(best), strategy, k, splits)


def setting_for(threshold: float) -> float:
    """``threshold`` rounded *down* to four decimals, the setting an operator types: it answers
    every question the exact threshold answers (rounding to nearest printed 0.85251 as 0.853,
    which refused some of them). The report's rates are those of this setting."""
    setting = math.floor(threshold * 10_000) / 10_000
    return setting if setting <= threshold else setting - 0.0001  # floor of a float can land above it


def support_inputs(
    pipeline: RagPipeline, split: str, strategy: str = "hybrid-convex", k: int = DEFAULT_ASK_K
) -> tuple[list[LabelledQuestion], list[float], Any]:
    """What the support classifier reads of ``split``'s labelled questions: each one's best
    cosine (as ``/v1/ask`` retrieves) and its query vector (rows of an array)."""
    questions = labelled_questions(split)
    texts = [q.text for q in questions]
    return questions, evidence_scores(pipeline, texts, strategy, k), pipeline.encoder().encode_queries(texts)


def classifier_report(
    pipeline: RagPipeline, strategy: str = "hybrid-convex", k: int = DEFAULT_ASK_K
) -> tuple[SupportClassifier, str]:
    """Fit the support classifier (``rag_server.support``) on every question set's dev split and
    score it on test, per set: (the classifier, a markdown table)."""
    from ..support import fit_support_classifier

    embedding = pipeline.build.manifest.get("embedding", {})
    data = {split: support_inputs(pipeline, split, strategy, k) for split in SPLITS}
    dev_questions, dev_cosines, dev_vectors = data["dev"]
    classifier = fit_support_classifier(
        str(embedding.get("model")),
        str(embedding.get("model_checksum")),
        dev_cosines,
        dev_vectors,
        [q.in_domain for q in dev_questions],
    )
    lines = ["| split | set | questions | handled (in domain: answered; off-topic: refused) |"]
    lines.append("| --- | --- | ---: | ---: |")
    for split, (questions, cosines, vectors) in data.items():
        right: dict[str, list[bool]] = {}
        for q, cosine, vector in zip(questions, cosines, vectors, strict=True):
            ok = classifier.supports(cosine, vector) == q.in_domain
            right.setdefault("in domain, all" if q.in_domain else "off-topic, all", []).append(ok)
            right.setdefault(q.source, []).append(ok)
        for name, oks in sorted(right.items()):
            lines.append(f"| {split} | {name} | {len(oks)} | {sum(oks) / len(oks):.1%} |")
    return classifier, "\n".join(lines)
