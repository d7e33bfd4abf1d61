#!/usr/bin/env python3
"""Could a classifier on the question's embedding refuse off-topic questions better than one cosine? (issue 13, item 5)

The support check answers when the best cosine between the question and a retrieved passage
reaches a threshold (``rag-server calibrate``). Near-misses (other Brazilian laws, generic IT)
score like in-domain questions on that one number. This script tries a logistic regression on
[10 × that cosine, the question's e5 vector (384 numbers)], fitted on the dev splits of every
question set (``calibration.labelled_questions``), class-balanced, at several L2 strengths C.
The threshold is chosen as ``rag-server calibrate`` chooses it — the highest that answers 95%
of in-domain dev questions — on 5-fold cross-validated dev scores (a model's scores on its own
training questions would be optimistic). It reports, on test, the in-domain answered and
off-topic refused overall and per question set, and a harder check: refit with one dev set left
out, how is that set's *test* split handled? A check that generalises to a new style of question
(the non-lawyers' ``natural`` split, say) must not depend on having seen that style.

    .venv/bin/python scripts/support_classifier.py --index /tmp/idx_e5
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.model_selection import cross_val_predict

from rag_server.evaluation.calibration import support_inputs
from rag_server.pipeline import RagPipeline
from rag_server.support import answering_threshold, features, logistic


def inputs(pipeline: RagPipeline, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per question of ``split``: the served cosine, the classifier's features, in domain?, its set."""
    questions, cosines, vectors = support_inputs(pipeline, split)
    cosine = np.array(cosines)
    in_domain = np.array([q.in_domain for q in questions])
    return cosine, features(cosine, vectors), in_domain, np.array([q.source for q in questions])


def handled(scores: np.ndarray, in_domain: np.ndarray, t: float) -> float:
    return float(np.where(in_domain, scores >= t, scores < t).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", required=True, help="an e5-small build (index root or build directory)")
    parser.add_argument("-C", type=float, nargs="+", default=[0.1, 1.0, 10.0], help="L2 strengths to try")
    args = parser.parse_args()
    pipeline = RagPipeline(args.index)
    dev_cos, dev_x, dev_y, dev_set = inputs(pipeline, "dev")
    test_cos, test_x, test_y, test_set = inputs(pipeline, "test")
    sets = sorted(set(test_set))

    rows = [("one cosine (served)", dev_cos, test_cos)]
    for c in args.C:
        cv = cross_val_predict(logistic(c), dev_x, dev_y, cv=5, method="decision_function")
        rows.append((f"logistic, C = {c:g}", cv, logistic(c).fit(dev_x, dev_y).decision_function(test_x)))
    print("| support check | test in-domain answered | test off-topic refused | " + " | ".join(sets) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in sets) + " |")
    for name, dev_scores, test_scores in rows:
        t = answering_threshold(dev_scores, dev_y)
        answered = (test_scores[test_y] >= t).mean()
        refused = (test_scores[~test_y] < t).mean()
        per_set = [handled(test_scores[test_set == s], test_y[test_set == s], t) for s in sets]
        print(f"| {name} | {answered:.3f} | {refused:.3f} | " + " | ".join(f"{v:.3f}" for v in per_set) + " |")

    print("\nA set left out of the dev questions: how its test split is handled (answered or refused, as due)\n")
    print("| set left out | one cosine | " + " | ".join(f"logistic, C = {c:g}" for c in args.C) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in args.C) + " |")
    for left in sets:
        keep, target = dev_set != left, test_set == left
        cells = [handled(test_cos[target], test_y[target], answering_threshold(dev_cos[keep], dev_y[keep]))]
        for c in args.C:
            cv = cross_val_predict(logistic(c), dev_x[keep], dev_y[keep], cv=5, method="decision_function")
            fitted = logistic(c).fit(dev_x[keep], dev_y[keep])
            t = answering_threshold(cv, dev_y[keep])
            cells.append(handled(fitted.decision_function(test_x[target]), test_y[target], t))
        print(f"| {left} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
