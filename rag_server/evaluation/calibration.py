"""Calibrating the "supported" threshold of ``/v1/ask`` (``rag-server calibrate``).

Evidence = the highest cosine similarity between the question and a retrieved passage
(``RagPipeline.evidence``). In-domain questions (the project's evaluation set) should be
answered; off-topic ones (``offtopic.jsonl``) should get ``supported: false``. A wrong refusal
costs a compliance user more than a weakly supported answer that still shows its citations, so
the threshold chosen on dev is the highest one that still answers at least ``min_answered``
(95%) of in-domain dev questions; it is then checked on the test split.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..pipeline import RagPipeline
from .datasets import EvalSet, load_project_questions

OFFTOPIC = Path(__file__).with_name("offtopic.jsonl")
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class SplitScores:
    """Evidence scores of one split's in-domain and off-topic questions."""

    split: str
    in_domain: list[float]
    off_topic: list[float]

    def rates(self, threshold: float) -> tuple[float, float]:
        """Share of in-domain questions answered and of off-topic ones refused at ``threshold``."""
        answered = sum(s >= threshold for s in self.in_domain) / len(self.in_domain)
        refused = sum(s < threshold for s in self.off_topic) / len(self.off_topic)
        return answered, refused


@dataclass(frozen=True)
class Calibration:
    threshold: float  # chosen on dev
    strategy: str
    k: int
    splits: list[SplitScores]

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
        lines.append(f"\nthreshold (chosen on dev): {self.threshold:.3f}  -> RAG_SUPPORT_THRESHOLD")
        return "\n".join(lines)


def evidence_scores(pipeline: RagPipeline, questions: list[str], strategy: str, k: int) -> list[float]:
    retriever = pipeline.retriever(strategy)
    return [pipeline.evidence(q, retriever.search(q, k=k)) for q in questions]


def load_offtopic(path: Path = OFFTOPIC) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calibrate(
    pipeline: RagPipeline,
    strategy: str = "hybrid-convex",
    k: int = 3,
    min_answered: float = 0.95,
    questions: EvalSet | None = None,
    offtopic: list[dict[str, str]] | None = None,
) -> Calibration:
    """Score both splits, choose the threshold on dev."""
    evalset = questions or load_project_questions()
    negatives = load_offtopic() if offtopic is None else offtopic
    splits = []
    for split in SPLITS:
        pos = evidence_scores(pipeline, [q.text for q in evalset.queries if q.split == split], strategy, k)
        neg = evidence_scores(pipeline, [r["question"] for r in negatives if r["split"] == split], strategy, k)
        splits.append(SplitScores(split, pos, neg))
    dev = splits[0]
    best = max(t for t in sorted(set(dev.in_domain + dev.off_topic)) if dev.rates(t)[0] >= min_answered)
    return Calibration(best, strategy, k, splits)
