"""Offline evaluation: datasets (project questions, BEIR), runs scored with ranx, reports."""

from .compare import Comparison, compare, save
from .datasets import EvalQuery, EvalSet, Judgment, load_beir, load_project_questions, resolve_qrels
from .runner import DEFAULT_SPECS, METRICS, StrategyResult, StrategySpec, run_strategy, score

__all__ = [
    "DEFAULT_SPECS",
    "METRICS",
    "Comparison",
    "EvalQuery",
    "EvalSet",
    "Judgment",
    "StrategyResult",
    "StrategySpec",
    "compare",
    "load_beir",
    "load_project_questions",
    "resolve_qrels",
    "run_strategy",
    "save",
    "score",
]
