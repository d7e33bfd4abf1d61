"""Saving and loading generator checkpoint files (:mod:`.serving` makes a ``Generator`` of one).

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

from ..errors import ModelError
from .model import CharTransformer, GeneratorConfig
from .vocab import CharVocab

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("model_args", "state_dict", "vocab", "corpus_checksum", "metrics", "trained_at", "version")


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
