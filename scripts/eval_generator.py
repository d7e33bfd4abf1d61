#!/usr/bin/env python3
"""Generator benchmarks (issue 4), measured in one run:

1. Validation bits per answer character of the checkpoint vs a character-bigram model counted
   on training examples of the same builder and split (target ≤ 0.6× the bigram's).
2. On the evaluation questions (``--split``): the served pipeline retrieves (default strategy),
   builds the prompt sized to the model's window and generates greedily. Groundedness = share
   of answer words of ≥ 4 letters that occur in the context (target ≥ 0.8). Key sentence =
   share of answers covering ≥ 80% of the words of the key sentence of a grade-2 passage (its
   sentence sharing the most words with the question), with the share of questions whose prompt
   holds that sentence at all (the ceiling), and the looser share covering any sentence of a
   grade-2 passage.
3. Sampling latency for 200 characters with and without the KV cache (median of repeats).

    .venv/bin/python scripts/eval_generator.py --checkpoint rag_server/generator/checkpoints/generator.pt
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from pathlib import Path

import torch

from rag_server.analysis import fold
from rag_server.evaluation import load_project_questions, resolve_qrels
from rag_server.generator import Generator
from rag_server.generator.batches import answer_nats
from rag_server.generator.examples import (
    Example,
    ExampleBuilder,
    ExampleStream,
    load_passages,
    split_passages,
)
from rag_server.generator.serving import DEFAULT_LOOKUP
from rag_server.pipeline import RagPipeline
from rag_server.prompt import build_prompt
from rag_server.sentences import split_sentences
from rag_server.teaching.ladder import CharBigram

_WORD = re.compile(r"[^\W\d_]{4,}")


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def covers(answer_words: set[str], sentence_words: set[str]) -> bool:
    """The answer holds at least 80% of the sentence's words (of ≥ 4 letters, accents folded)."""
    return bool(sentence_words) and len(sentence_words & answer_words) / len(sentence_words) >= 0.8


def key_sentence(question: str, passage_text: str) -> set[str]:
    """A relevant passage's key sentence, as words: the one sharing the most question words, by
    their first 5 letters (so "processing" meets "processed"); ties go to the earlier sentence."""
    asked = {w[:5] for w in words(question)}
    best: set[str] = set()
    best_score = -1.0
    for sentence in split_sentences(passage_text):
        ws = set(words(sentence))
        score = len({w[:5] for w in ws} & asked)
        if ws and score > best_score:
            best, best_score = ws, score
    return best


def bigram_bits(train_texts: list[str], examples: list[Example], vocab_size: int) -> float:
    """Bits per answer character of a char bigram counted on ``train_texts`` (the ladder's, add-0.1)."""
    bigram = CharBigram(train_texts, vocab_size)
    bits = sum(bigram.bits(e.text[len(e.prompt) :], prev=e.prompt[-1]) for e in examples)
    return bits / sum(len(e.text) - len(e.prompt) for e in examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--index", default="indexes")
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--val-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1337, help="the training run's seed (same split)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per decoding way")
    args = parser.parse_args()
    torch.set_num_threads(1)

    gen = Generator.load(args.checkpoint)
    passages = load_passages(Path(args.corpus))
    train_p, val_p = split_passages(passages, 0.05, args.seed)
    val = ExampleStream(ExampleBuilder(val_p, gen.block_size), 0.0, args.seed + 1).take(args.val_examples)
    train = ExampleStream(ExampleBuilder(train_p, gen.block_size), 0.0, args.seed).take(3000)
    nats, n_chars = answer_nats(gen.model, val, gen.vocab)
    gen_bpc = nats / math.log(2)
    big_bpc = bigram_bits([e.text for e in train], val, len(gen.vocab))
    print(
        f"validation (real examples, {int(n_chars)} answer chars): generator {gen_bpc:.3f} bits/char, "
        f"char bigram {big_bpc:.3f} bits/char, ratio {gen_bpc / big_bpc:.4f} (target ≤ 0.6)"
    )

    pipeline = RagPipeline(args.index, generator=gen)
    evalset = load_project_questions().split(args.split)
    qrels = resolve_qrels(evalset, pipeline.build.passages)
    by_id = {p.id: p for p in pipeline.build.passages}
    grounded: list[float] = []
    latencies: list[float] = []
    key_hits = passage_hits = key_in_prompt = 0
    queries = evalset.queries[: args.questions]
    for q in queries:
        hits = pipeline.retriever(None).search(q.text, k=3)
        prompt = build_prompt(q.text, hits, gen.block_size - 200 - 1)
        start = time.perf_counter()
        answer = gen.complete(prompt.text, max_new_chars=200).strip()
        latencies.append((time.perf_counter() - start) * 1000)
        context = set(words(" ".join(c.text for c in prompt.citations)))
        answer_words = words(answer)
        aw = set(answer_words)
        grounded.append(sum(w in context for w in answer_words) / len(answer_words) if answer_words else 0.0)
        relevant = [by_id[pid] for pid, g in qrels[q.id].items() if g == 2]
        keys = [key_sentence(q.text, p.text) for p in relevant]
        key_hits += any(covers(aw, k) for k in keys)
        passage_hits += any(covers(aw, set(words(s))) for p in relevant for s in split_sentences(p.text))
        prompt_sentences = [set(words(s)) for c in prompt.citations for s in split_sentences(c.text)]
        key_in_prompt += any(covers(ps, k) for k in keys for ps in prompt_sentences)
    n = len(queries)
    print(
        f"{args.split} questions: {n}; groundedness {statistics.mean(grounded):.3f} (target ≥ 0.8); "
        f"key sentence reproduced {key_hits / n:.3f} (in the prompt for {key_in_prompt / n:.3f}: the ceiling "
        f"retrieval and the prompt budget leave); some sentence of a relevant passage {passage_hits / n:.3f}; "
        f"greedy answer p50 {statistics.median(latencies):.0f} ms"
    )

    first = queries[0].text
    prompt = build_prompt(first, pipeline.retriever(None).search(first, k=3), gen.block_size - 201)
    ids = torch.tensor([gen.vocab.encode(prompt.text)])
    # Plain greedy decoding of exactly 200 characters (no stop), three ways: recomputing the
    # window every step, with the KV cache, and with the cache plus prompt-lookup drafts.
    ways = {"no cache": {"use_cache": False}, "KV cache": {}, "KV cache + lookup": {"lookup": DEFAULT_LOOKUP}}
    timing = {}
    for name, options in ways.items():
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = gen.model.generate(ids, 200, temperature=0.0, **options)  # type: ignore[arg-type]
            runs.append((time.perf_counter() - start) * 1000)
        assert out.size(1) == ids.size(1) + 200
        timing[name] = statistics.median(runs)
    print(
        f"sampling 200 chars (prompt {len(prompt.text)} chars, 1 thread, median of {args.repeats}): "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in timing.items())
        + f"; cache speed-up {timing['no cache'] / timing['KV cache']:.1f}x, "
        f"lookup on top {timing['KV cache'] / timing['KV cache + lookup']:.1f}x"
    )
    print(json.dumps({"checkpoint_metrics": {k: v for k, v in gen.metrics.items() if k != "history"}}, default=str))


if __name__ == "__main__":
    main()
