"""Training the character-level answer generator (``rag-server train``).

Examples are prompts exactly as ``build_prompt`` writes them followed by `` <answer>\\n``, where
the answer is the context sentence the question asks about (``generator/examples.py``): mostly
synthetic copy drills (``synthetic_ratio``), the rest real questions over the corpus. Fresh
examples are drawn every step. The loss counts only the answer characters: the prompt is read,
never predicted, so the model's capacity goes to finding and copying the sentence.

Validation uses passages held out of training (real examples) and fresh synthetic ones, and is
reported in bits per answer character (cross-entropy in nats / ln 2); at the end, greedy answers
to a few validation prompts are compared with the expected ones (exact-match copy rate). A
checkpoint is written at every validation too, so a run stopped early still leaves one.

A run is described by a :class:`TrainConfig`; the shipped checkpoint's is a file,
``recipes/shipped.json``.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..documents import corpus_checksum
from ..errors import ConfigError
from ..passage import Passage
from .batches import BatchStream, answer_nats
from .checkpoint import save_checkpoint
from .examples import (
    STOP,
    Example,
    ExampleBuilder,
    ExampleStream,
    corpus_vocab,
    load_passages,
    split_passages,
)
from .model import IGNORE_INDEX, CharTransformer, GeneratorConfig
from .paths import PACKAGED_CHECKPOINT
from .vocab import CharVocab

Batch = tuple[torch.Tensor, torch.Tensor, int]  # inputs (B, T), targets (B, T), characters read
RECIPES = Path(__file__).with_name("recipes")
SHIPPED_RECIPE = RECIPES / "shipped.json"
"""The recipe of the packaged checkpoint (``rag-server train --config`` reads it)."""


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "str": str}


@dataclass(frozen=True)
class TrainConfig:
    corpus: str = "corpus"
    out: str = str(PACKAGED_CHECKPOINT)
    steps: int = 5000  # optimizer steps
    batch_size: int = 32
    block_size: int = 768  # longest example, in characters
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    lr: float = 1e-3  # peak learning rate (cosine decay to lr/10)
    warmup: int = 100  # linear warm-up steps (at most steps/10)
    weight_decay: float = 0.1
    max_minutes: float = 0.0  # stop after this much training (0: none); the schedule follows the clock
    synthetic_ratio: float = 0.9  # share of synthetic copy drills
    val_fraction: float = 0.05  # share of passages held out
    eval_interval: int = 250  # steps between validation runs
    eval_examples: int = 200  # validation examples of each kind
    eval_generate: int = 20  # greedy answers checked per kind at the end
    seed: int = 1337
    device: str = "auto"  # auto (cuda when available, else cpu), cpu or cuda
    threads: int = 0  # torch CPU threads (0: torch's default; 1 is faster on a busy machine)
    half: bool = False  # store the final weights as float16 (half the file)
    workers: int = 0  # processes making examples (0: in this process)
    compile: bool = False  # torch.compile the model (falls back to eager)
    amp: str = "auto"  # bf16 autocast: auto (on CUDA only), bf16 or off

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "block_size", "n_layer", "n_head", "n_embd", "eval_interval"):
            if getattr(self, name) < 1:
                raise ConfigError("train", f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.synthetic_ratio <= 1.0:
            raise ConfigError("train", f"synthetic_ratio must be between 0 and 1, got {self.synthetic_ratio}")
        if self.amp not in ("auto", "bf16", "off"):
            raise ConfigError("train", f"amp must be auto, bf16 or off, got {self.amp!r}")

    @classmethod
    def from_file(cls, path: Path | str, **overrides: Any) -> TrainConfig:
        """A recipe file (a JSON object of :class:`TrainConfig` fields), then ``overrides``."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(path, f"cannot read the recipe ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(path, "a recipe is a JSON object of training options")
        values.pop("about", None)  # a note for people
        known = {f.name: f for f in fields(cls)}
        for name, value in values.items():
            if name not in known:
                raise ConfigError(path, f"unknown option {name!r}")
            kind = str(known[name].type)
            if not isinstance(value, _JSON_TYPES[kind]) or (isinstance(value, bool) and kind != "bool"):
                raise ConfigError(path, f"{name} must be a JSON {known[name].type}, got {value!r}")
        try:
            return cls(**{**values, **overrides})
        except ConfigError as exc:
            raise ConfigError(path, exc.problem) from None


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]


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


def batches(config: TrainConfig, passages: Sequence[Passage], vocab: CharVocab, cuda: bool) -> Iterator[Batch]:
    """Training batches, made in worker processes when ``workers`` > 0, else in this one."""
    pad_to = config.block_size if config.compile else None  # fixed shapes: one compiled graph
    dataset = BatchStream(
        passages, vocab, config.block_size, config.batch_size, config.synthetic_ratio, config.seed, pad_to
    )
    if config.workers == 0:
        return iter(dataset)  # outside a DataLoader it is worker 0: the stream seeded config.seed
    loader = DataLoader(dataset, batch_size=None, num_workers=config.workers, pin_memory=cuda, prefetch_factor=4)
    return iter(loader)


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train a generator as ``config`` says and save it to ``config.out``; corpus problems raise
    :class:`~rag_server.errors.CorpusError`."""
    torch.manual_seed(config.seed)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    device = pick_device(config.device)
    cuda = device.type == "cuda"
    amp = config.amp == "bf16" or (config.amp == "auto" and cuda)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True

    passages = load_passages(config.corpus)
    checksum = corpus_checksum([Path(config.corpus)])
    train_passages, val_passages = split_passages(passages, config.val_fraction, config.seed)
    vocab = corpus_vocab(passages)
    val_builder = ExampleBuilder(val_passages, config.block_size)
    val_real = ExampleStream(val_builder, 0.0, config.seed + 1).take(config.eval_examples)
    val_synthetic = ExampleStream(val_builder, 1.0, config.seed + 2).take(config.eval_examples)

    model_config = GeneratorConfig(
        vocab_size=len(vocab),
        block_size=config.block_size,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_embd=config.n_embd,
        dropout=config.dropout,
    )
    model = CharTransformer(model_config).to(device)
    optimizer = model.configure_optimizers(config.weight_decay, config.lr)
    warmup = max(1, min(config.warmup, config.steps // 10))
    # ``step_model`` is what training calls (compiled or not); ``model`` is saved and evaluated.
    step_model: torch.nn.Module = model
    if config.compile:
        step_model = torch.compile(model)  # type: ignore[assignment]
    log(
        f"{len(passages)} passages ({len(train_passages)} train, {len(val_passages)} validation), "
        f"vocab {len(vocab)}, {model.num_parameters() / 1e6:.2f}M parameters, device {device}, "
        f"bf16 {amp}, compile {config.compile}, workers {config.workers}, torch threads {torch.get_num_threads()}"
    )

    def autocast() -> AbstractContextManager[object]:
        return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()

    def validate() -> dict[str, float]:
        with autocast():
            nats_real, chars_real = evaluate(model, val_real, vocab, device, config.batch_size)
            nats_syn, chars_syn = evaluate(model, val_synthetic, vocab, device, config.batch_size)
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

    metrics: dict[str, Any] = {
        "config": asdict(config),
        "device": str(device) if not cuda else torch.cuda.get_device_name(device),
        "n_params": model.num_parameters(),
        "train_passages": len(train_passages),
        "val_passages": len(val_passages),
    }

    model.train()
    train_seconds, train_chars, answer_chars = 0.0, 0, 0
    smoothed: float | None = None
    history: list[dict[str, float]] = []
    budget = config.max_minutes * 60
    # No bar when the output is not a terminal (a log file): the validation lines tell the story.
    progress = tqdm(range(config.steps), desc="train", unit="step", dynamic_ncols=True, mininterval=2.0, disable=None)
    stream = batches(config, train_passages, vocab, cuda)
    steps_done = 0
    for step in progress:
        if budget and train_seconds > budget:
            log(f"time budget of {config.max_minutes} min reached after {step} steps")
            break
        started = time.perf_counter()
        lr = lr_at(step, config.steps, config.lr, warmup, train_seconds / budget if budget else 0.0)
        x, y, chars = next(stream)
        answer_chars += int((y != IGNORE_INDEX).sum())
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        try:
            loss = train_step(x, y, lr)
        except Exception as exc:  # a compiler problem on this machine: train uncompiled instead
            if step_model is model or step > 0:
                raise
            log(f"torch.compile failed ({type(exc).__name__}: {exc}); training uncompiled")
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
        if (step + 1) % config.eval_interval == 0 and step + 1 < config.steps:
            scores = validate()
            history.append({"step": step + 1, "train_seconds": train_seconds, **scores})
            log(
                f"step {step + 1} ({train_seconds:.0f} s, {train_chars / 1e6:.0f}M chars, "
                f"{train_chars / train_seconds:,.0f} chars/s): train loss {smoothed:.3f} "
                f"nats/char, val {scores['val_bpc']:.3f} bits/char "
                f"(real {scores['val_bpc_real']:.3f}, synthetic {scores['val_bpc_synthetic']:.3f})"
            )
            # A checkpoint at every validation: a run killed at its time limit still leaves one.
            interim = {**metrics, **scores, "steps": steps_done, "train_chars": train_chars, "history": history}
            save_checkpoint(config.out, model, vocab, checksum, interim)
    progress.close()

    scores = validate()
    history.append({"step": steps_done, "train_seconds": train_seconds, **scores})
    n_gen = max(0, min(config.eval_generate, config.eval_examples))
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
    metrics["stored_as"] = "float16" if config.half else "float32"
    path = save_checkpoint(config.out, model, vocab, checksum, metrics, half=config.half)
    return TrainResult(Path(path), metrics)
