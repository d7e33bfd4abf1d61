#!/usr/bin/env python3
"""Train the character-level answer generator on a corpus and save a checkpoint.

Examples are prompts exactly as ``build_prompt`` writes them followed by `` <answer>\\n``, where
the answer is the context sentence the question asks about (see ``rag_server/generator/examples.py``):
mostly synthetic copy drills (``--synthetic-ratio``), the rest real questions over the corpus.
Fresh examples are drawn every step. The loss counts only the answer characters: the prompt is
read, never predicted, so the model's capacity goes to finding and copying the sentence.

Validation uses passages held out of training (real examples) and fresh synthetic ones, and is
reported in bits per answer character (cross-entropy in nats / ln 2); at the end, greedy answers
to a few validation prompts are compared with the expected ones (exact-match copy rate).

    .venv/bin/python scripts/train_generator.py --corpus corpus --steps 5000
    .venv/bin/python scripts/train_generator.py --steps 200 --n-layer 2 --n-embd 64 --block-size 384 \\
        --out /tmp/generator-smoke.pt          # a quick smoke run on a CPU

Runs on a CPU (``--device auto`` picks CUDA only when it is available). On a GPU, feed it with
worker processes and fixed shapes, and bound it by time (the learning rate then follows the
clock, so a time-bounded run still anneals)::

    python scripts/train_generator.py --device cuda --workers 12 --compile --batch-size 128 \
        --n-layer 6 --n-embd 256 --n-head 8 --steps 1000000 --max-minutes 7 --eval-interval 1000

A checkpoint is written at every validation too, so a run stopped early still leaves one.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rag_server.documents import corpus_checksum
from rag_server.errors import CorpusError
from rag_server.generator.batches import BatchStream, answer_nats
from rag_server.generator.checkpoint import save_checkpoint
from rag_server.generator.examples import (
    STOP,
    Example,
    ExampleBuilder,
    ExampleStream,
    corpus_vocab,
    load_passages,
    split_passages,
)
from rag_server.generator.model import IGNORE_INDEX, CharTransformer, GeneratorConfig
from rag_server.generator.vocab import CharVocab
from rag_server.passage import Passage

Batch = tuple[torch.Tensor, torch.Tensor, int]  # inputs (B, T), targets (B, T), characters read

DEFAULT_OUT = "rag_server/generator/checkpoints/generator.pt"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="corpus", help="corpus directory (default: corpus)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"checkpoint path (default: {DEFAULT_OUT})")
    parser.add_argument("--steps", type=int, default=5000, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=768, help="longest example, in characters")
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay to lr/10)")
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps (at most steps/10)")
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop after this much training (0: none)")
    parser.add_argument("--synthetic-ratio", type=float, default=0.9, help="share of synthetic copy drills")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of passages held out")
    parser.add_argument("--eval-interval", type=int, default=250, help="steps between validation runs")
    parser.add_argument("--eval-examples", type=int, default=200, help="validation examples of each kind")
    parser.add_argument("--eval-generate", type=int, default=20, help="greedy answers checked per kind at the end")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu or cuda")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default; 1 is faster on a busy machine)"
    )
    parser.add_argument("--half", action="store_true", help="store the final weights as float16 (half the file)")
    parser.add_argument("--workers", type=int, default=0, help="processes making examples (0: in this process)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (falls back to eager)")
    parser.add_argument(
        "--amp", choices=("auto", "bf16", "off"), default="auto", help="bf16 autocast (auto: on CUDA only)"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "block_size", "n_layer", "n_head", "n_embd", "eval_interval"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0.0 <= args.synthetic_ratio <= 1.0:
        parser.error("--synthetic-ratio must be between 0 and 1")
    return args


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, steps: int, peak: float, warmup: int, time_progress: float = 0.0) -> float:
    """Linear warm-up, then cosine decay from ``peak`` to ``peak / 10`` at the last step, or at the
    end of the time budget when ``time_progress`` (elapsed / budget) gets there first."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = max((step - warmup) / max(1, steps - warmup), time_progress)
    return peak / 10 + (peak - peak / 10) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def evaluate(
    model: torch.nn.Module, examples: Sequence[Example], vocab: CharVocab, device: torch.device, batch_size: int
) -> tuple[float, int]:
    """Mean cross-entropy in nats per answer character over ``examples``, and how many characters."""
    was_training = model.training
    model.eval()
    try:
        return answer_nats(model, examples, vocab, device, batch_size)
    finally:
        model.train(was_training)


@torch.no_grad()
def copy_rate(model: CharTransformer, examples: Sequence[Example], vocab: CharVocab, device: torch.device) -> float:
    """Share of ``examples`` whose greedy completion is exactly `` <answer>`` before the stop."""
    if not examples:
        return float("nan")
    was_training = model.training
    model.eval()
    stop = vocab.encode(STOP)
    hits = 0
    for example in examples:
        ids = vocab.encode(example.prompt)
        out = model.generate(
            torch.tensor([ids], dtype=torch.long, device=device),
            max_new_tokens=len(example.answer) + 10,
            temperature=0.0,
            stop=stop,
        )
        completion = vocab.decode(out[0, len(ids) :].tolist()).split(STOP, 1)[0]
        hits += completion.strip() == example.answer
    model.train(was_training)
    return hits / len(examples)


def batches(args: argparse.Namespace, passages: Sequence[Passage], vocab: CharVocab, cuda: bool) -> Iterator[Batch]:
    """Training batches, made in worker processes when ``--workers`` > 0, else in this one."""
    pad_to = args.block_size if args.compile else None  # fixed shapes: one compiled graph
    dataset = BatchStream(passages, vocab, args.block_size, args.batch_size, args.synthetic_ratio, args.seed, pad_to)
    if args.workers == 0:
        return iter(dataset)  # outside a DataLoader it is worker 0: the stream seeded args.seed
    loader = DataLoader(dataset, batch_size=None, num_workers=args.workers, pin_memory=cuda, prefetch_factor=4)
    return iter(loader)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    amp = args.amp == "bf16" or (args.amp == "auto" and cuda)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True

    try:
        passages = load_passages(args.corpus)
        checksum = corpus_checksum([Path(args.corpus)])
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train_passages, val_passages = split_passages(passages, args.val_fraction, args.seed)
    vocab = corpus_vocab(passages)
    val_builder = ExampleBuilder(val_passages, args.block_size)
    val_real = ExampleStream(val_builder, 0.0, args.seed + 1).take(args.eval_examples)
    val_synthetic = ExampleStream(val_builder, 1.0, args.seed + 2).take(args.eval_examples)

    config = GeneratorConfig(
        vocab_size=len(vocab),
        block_size=args.block_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        dropout=args.dropout,
    )
    model = CharTransformer(config).to(device)
    optimizer = model.configure_optimizers(args.weight_decay, args.lr)
    warmup = max(1, min(args.warmup, args.steps // 10))
    # ``step_model`` is what training calls (compiled or not); ``model`` is saved and evaluated.
    step_model: torch.nn.Module = model
    if args.compile:
        step_model = torch.compile(model)  # type: ignore[assignment]
    print(
        f"{len(passages)} passages ({len(train_passages)} train, {len(val_passages)} validation), "
        f"vocab {len(vocab)}, {model.num_parameters() / 1e6:.2f}M parameters, device {device}, "
        f"bf16 {amp}, compile {args.compile}, workers {args.workers}, torch threads {torch.get_num_threads()}",
        file=sys.stderr,
    )

    def autocast() -> AbstractContextManager[object]:
        return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()

    def validate() -> dict[str, float]:
        with autocast():
            nats_real, chars_real = evaluate(model, val_real, vocab, device, args.batch_size)
            nats_syn, chars_syn = evaluate(model, val_synthetic, vocab, device, args.batch_size)
        chars = chars_real + chars_syn
        nats = (nats_real * chars_real + nats_syn * chars_syn) / chars
        # Validation mixes the kinds equally; the per-kind numbers say which one is hard.
        return {
            "val_bpc": nats / math.log(2),
            "val_bpc_real": nats_real / math.log(2),
            "val_bpc_synthetic": nats_syn / math.log(2),
        }

    def train_step(x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast():
            _, loss = step_model(x, y)
        assert loss is not None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.detach()

    metrics: dict[str, object] = {
        "command": " ".join(["scripts/train_generator.py", *(sys.argv[1:] if argv is None else argv)]),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "synthetic_ratio": args.synthetic_ratio,
        "seed": args.seed,
        "device": str(device) if not cuda else torch.cuda.get_device_name(device),
        "n_params": model.num_parameters(),
        "train_passages": len(train_passages),
        "val_passages": len(val_passages),
    }

    model.train()
    train_seconds, train_chars, answer_chars = 0.0, 0, 0
    smoothed: float | None = None
    history: list[dict[str, float]] = []
    budget = args.max_minutes * 60
    # No bar when the output is not a terminal (a log file): the validation lines tell the story.
    progress = tqdm(range(args.steps), desc="train", unit="step", dynamic_ncols=True, mininterval=2.0, disable=None)
    stream = batches(args, train_passages, vocab, cuda)
    steps_done = 0
    for step in progress:
        if budget and train_seconds > budget:
            progress.write(f"time budget of {args.max_minutes} min reached after {step} steps")
            break
        started = time.perf_counter()
        lr = lr_at(step, args.steps, args.lr, warmup, train_seconds / budget if budget else 0.0)
        x, y, chars = next(stream)
        answer_chars += int((y != IGNORE_INDEX).sum())
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        try:
            loss = train_step(x, y, lr)
        except Exception as exc:  # a compiler problem on this machine: train uncompiled instead
            if step_model is model or step > 0:
                raise
            progress.write(f"torch.compile failed ({type(exc).__name__}: {exc}); training uncompiled")
            step_model = model
            loss = train_step(x, y, lr)
        steps_done = step + 1
        train_chars += chars
        if step % 10 == 0 or not cuda:
            value = loss.item()  # waits for the device: only now and then on a GPU
            smoothed = value if smoothed is None else 0.7 * smoothed + 0.3 * value
        train_seconds += time.perf_counter() - started
        progress.set_postfix(
            loss=f"{smoothed:.3f}", lr=f"{lr:.1e}", chars_s=f"{train_chars / train_seconds:,.0f}", refresh=False
        )
        if (step + 1) % args.eval_interval == 0 and step + 1 < args.steps:
            scores = validate()
            history.append({"step": step + 1, "train_seconds": train_seconds, **scores})
            progress.write(
                f"step {step + 1} ({train_seconds:.0f} s, {train_chars / 1e6:.0f}M chars, "
                f"{train_chars / train_seconds:,.0f} chars/s): train loss {smoothed:.3f} "
                f"nats/char, val {scores['val_bpc']:.3f} bits/char "
                f"(real {scores['val_bpc_real']:.3f}, synthetic {scores['val_bpc_synthetic']:.3f})"
            )
            # A checkpoint at every validation: a run killed at its time limit still leaves one.
            interim = {**metrics, **scores, "steps": steps_done, "train_chars": train_chars, "history": history}
            save_checkpoint(args.out, model, vocab, checksum, interim)
    progress.close()

    scores = validate()
    history.append({"step": steps_done, "train_seconds": train_seconds, **scores})
    n_gen = max(0, min(args.eval_generate, args.eval_examples))
    metrics.update(
        {
            **scores,
            "copy_exact_real": copy_rate(model, val_real[:n_gen], vocab, device),
            "copy_exact_synthetic": copy_rate(model, val_synthetic[:n_gen], vocab, device),
            "copy_eval_examples": n_gen,
            "train_loss": smoothed,
            "train_chars": train_chars,
            "train_chars_per_s": train_chars / train_seconds,
            "train_answer_chars_per_s": answer_chars / train_seconds,
            "train_seconds": train_seconds,
            "steps": steps_done,
            "history": history,
        }
    )
    metrics["stored_as"] = "float16" if args.half else "float32"
    path = save_checkpoint(args.out, model, vocab, checksum, metrics, half=args.half)
    print(json.dumps({"checkpoint": str(path), **{k: v for k, v in metrics.items() if k != "history"}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
