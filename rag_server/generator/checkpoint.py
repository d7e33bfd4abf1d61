"""Saving and loading generator checkpoints, and the ``Generator`` that serves completions from one.

A checkpoint is one ``torch.save`` of a plain dict::

    {"model_args": asdict(GeneratorConfig), "state_dict": {name: tensor}, "vocab": ["<unk>", "a", ...],
     "corpus_checksum": str, "metrics": dict, "trained_at": ISO-8601 str, "version": 1}

holding only tensors, str, int, float, bool, None, list and dict, so that it loads with
``torch.load(..., weights_only=True)``: loading never unpickles arbitrary objects, so a checkpoint
from elsewhere cannot run code. Every problem with a file raises ``ModelError`` naming it.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidParameterError, ModelError
from .model import CharTransformer, GeneratorConfig
from .vocab import CharVocab

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("model_args", "state_dict", "vocab", "corpus_checksum", "metrics", "trained_at", "version")
STOP = "\n"
"""The answer's stop sequence: an answer is one line."""
DEFAULT_LOOKUP = 24
"""Characters drafted per pass by prompt lookup in greedy decoding (see ``CharTransformer.generate``)."""


def _check_plain(value: object, where: str) -> None:
    """Raise ValueError unless ``value`` is made only of types a weights-only load accepts."""
    if value is None or isinstance(value, str | int | float | bool | torch.Tensor):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-string key {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ValueError(f"{where} holds a {type(value).__name__}; checkpoints hold only plain data and tensors")


def save_checkpoint(
    path: Path | str,
    model: CharTransformer,
    vocab: CharVocab,
    corpus_checksum: str,
    metrics: Mapping[str, Any] | None = None,
    *,
    half: bool = False,
    trained_at: str | None = None,
) -> Path:
    """Write the checkpoint atomically (a temporary file, then a rename) and return its path.

    ``half`` stores the weights as float16: half the file, and loading casts them back to the
    model's float32 (a relative rounding of ~5e-4 per weight). ``trained_at`` defaults to now.
    """
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} ids but the model was built for {model.config.vocab_size}")
    # Plain dict of CPU tensors: the tied wte/lm_head weight is one tensor under two names, and
    # stays one after a cast (the memo), so the file holds it once.
    memo: dict[int, torch.Tensor] = {}
    state: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr()
        if key not in memo:
            tensor = tensor.detach().cpu()
            memo[key] = tensor.half() if half and tensor.is_floating_point() else tensor
        state[name] = memo[key]
    payload: dict[str, Any] = {
        "model_args": asdict(model.config),
        "state_dict": state,
        "vocab": vocab.to_json(),
        "corpus_checksum": str(corpus_checksum),
        "metrics": dict(metrics or {}),
        "trained_at": trained_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "version": CHECKPOINT_VERSION,
    }
    _check_plain(payload, "checkpoint")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint (the model is not built yet)."""

    path: Path
    checkpoint_id: str  # first 12 hex digits of the file's sha256
    config: GeneratorConfig
    state_dict: dict[str, torch.Tensor]
    vocab: CharVocab
    corpus_checksum: str
    metrics: dict[str, Any]
    trained_at: str
    version: int


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Read and validate a checkpoint; ``ModelError`` naming the file on any problem."""
    path = Path(path)

    def fail(problem: str) -> ModelError:
        return ModelError(f"generator checkpoint {path}: {problem}")

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("file not found") from None
    except OSError as exc:
        raise fail(f"cannot read file ({exc.strerror or exc})") from None
    checkpoint_id = hashlib.sha256(data).hexdigest()[:12]
    try:
        # Load the bytes just hashed, so the id names exactly what was loaded.
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, or objects a weights-only load refuses
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"not a readable checkpoint (truncated or corrupt?): {detail}") from None

    if not isinstance(raw, dict):
        raise fail(f"expected a dict, found {type(raw).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise fail(f"missing keys {missing}")
    if raw["version"] != CHECKPOINT_VERSION:
        raise fail(f"version {raw['version']!r} is not supported (expected {CHECKPOINT_VERSION})")

    args = raw["model_args"]
    if not isinstance(args, dict):
        raise fail("model_args is not a dict")
    known = {f.name for f in fields(GeneratorConfig)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise fail(f"model_args has unknown keys {unknown}")
    try:
        config = GeneratorConfig(**args)
    except (TypeError, ValueError) as exc:
        raise fail(f"bad model_args: {exc}") from None

    try:
        vocab = CharVocab.from_json(raw["vocab"])
    except ValueError as exc:
        raise fail(f"bad vocab: {exc}") from None

    state = raw["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise fail("state_dict is not a dict of tensors")
    embedding = state.get("wte.weight")
    if embedding is None:
        raise fail("state_dict has no wte.weight")
    if not (len(vocab) == config.vocab_size == embedding.shape[0]):
        raise fail(
            f"vocabulary size mismatch: vocab has {len(vocab)} ids, model_args.vocab_size is "
            f"{config.vocab_size}, the embedding has {embedding.shape[0]} rows"
        )
    for key in ("corpus_checksum", "trained_at"):
        if not isinstance(raw[key], str):
            raise fail(f"{key} is not a string")
    if not isinstance(raw["metrics"], dict):
        raise fail("metrics is not a dict")
    return Checkpoint(
        path=path,
        checkpoint_id=checkpoint_id,
        config=config,
        state_dict=state,
        vocab=vocab,
        corpus_checksum=raw["corpus_checksum"],
        metrics=raw["metrics"],
        trained_at=raw["trained_at"],
        version=raw["version"],
    )


class Generator:
    """A trained ``CharTransformer`` and its vocabulary, ready to complete prompts on the CPU.

    The model is in eval mode and never trained here; the number of threads torch uses is the
    caller's business (``torch.set_num_threads``).
    """

    def __init__(
        self,
        model: CharTransformer,
        vocab: CharVocab,
        *,
        checkpoint_id: str = "",
        corpus_checksum: str = "",
        metrics: Mapping[str, Any] | None = None,
        trained_at: str = "",
    ) -> None:
        if len(vocab) != model.config.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} ids but the model was built for {model.config.vocab_size}")
        self.model = model.eval()
        self.vocab = vocab
        self.checkpoint_id = checkpoint_id
        self.corpus_checksum = corpus_checksum
        self.metrics = dict(metrics or {})
        self.trained_at = trained_at

    @property
    def block_size(self) -> int:
        """Longest context the model sees: a longer prompt loses its beginning (size prompts to fit)."""
        return self.model.config.block_size

    @classmethod
    def load(cls, path: Path | str) -> Generator:
        """The generator of a checkpoint file; ``ModelError`` naming the file when it is missing or bad."""
        ckpt = load_checkpoint(path)
        model = CharTransformer(ckpt.config)
        try:
            model.load_state_dict(ckpt.state_dict, strict=True)
        except RuntimeError as exc:  # missing/unexpected keys or wrong shapes
            first = str(exc).strip().splitlines()[0]
            raise ModelError(f"generator checkpoint {ckpt.path}: state_dict does not fit model_args: {first}") from None
        return cls(
            model,
            ckpt.vocab,
            checkpoint_id=ckpt.checkpoint_id,
            corpus_checksum=ckpt.corpus_checksum,
            metrics=ckpt.metrics,
            trained_at=ckpt.trained_at,
        )

    def complete(
        self,
        prompt: str,
        max_new_chars: int = 200,
        temperature: float = 0.0,
        top_k: int | None = None,
        seed: int | None = None,
        stop: str | None = STOP,
        lookup: int = DEFAULT_LOOKUP,
    ) -> str:
        """The characters generated after ``prompt``, up to (not including) ``stop`` or at most ``max_new_chars``.

        ``temperature=0`` is greedy and deterministic; above 0, ``seed`` makes sampling
        reproducible (without one, torch's global generator is used). For a prompt from
        ``build_prompt`` the completion is ``" <answer>"``: strip it before showing it. Characters
        the model never saw are read as unknown. Greedy decoding drafts up to ``lookup``
        characters at a time from the prompt (same output, fewer passes; 0 turns it off).
        Raises ``InvalidParameterError`` on bad arguments: the prompt and ``stop`` are checked
        here, the generation settings by the model (:meth:`CharTransformer.generate`).
        """
        if not isinstance(prompt, str) or not prompt:
            raise InvalidParameterError("prompt must be a non-empty string")
        if stop is not None and (not stop or any(ch not in self.vocab for ch in stop)):
            raise InvalidParameterError(f"stop must be a non-empty string of known characters, got {stop!r}")

        ids = self.vocab.encode(prompt)
        generator = None
        if seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(
                torch.tensor([ids], dtype=torch.long),
                max_new_tokens=max_new_chars,
                temperature=temperature,
                top_k=top_k,
                stop=self.vocab.encode(stop) if stop else None,
                generator=generator,
                lookup=lookup,
            )
        text = self.vocab.decode(out[0, len(ids) :].tolist())
        if stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        return text


def load_generator(setting: str | Path | None) -> Generator | None:
    """The generator a setting names: ``None`` is the packaged checkpoint, ``"none"`` (any case) or
    ``""`` is no generator (answers quote the best passage), anything else a checkpoint path.
    The one reading of ``RAG_GENERATOR_CHECKPOINT`` and ``rag-server ask --checkpoint``."""
    if setting is None:
        from .paths import PACKAGED_CHECKPOINT

        return Generator.load(PACKAGED_CHECKPOINT)
    if str(setting).strip().lower() in {"", "none"}:
        return None
    return Generator.load(setting)
