"""The ``Generator`` a server answers with: a trained ``CharTransformer`` and its vocabulary,
loaded from a checkpoint file (:mod:`.checkpoint`) and completing prompts on the CPU."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidParameterError, ModelError
from .checkpoint import load_checkpoint
from .model import CharTransformer, PrefixMemo
from .vocab import CharVocab

STOP = "\n"
"""The answer's stop sequence: an answer is one line."""
DEFAULT_LOOKUP = 24
"""Characters drafted per pass by prompt lookup in greedy decoding (see ``CharTransformer.generate``)."""


class Generator:
    """A trained ``CharTransformer`` and its vocabulary, ready to complete prompts on the CPU.

    The model is in eval mode and never trained here; the number of threads torch uses is the
    caller's business (``torch.set_num_threads``). Each thread keeps its last prompt's keys and
    values (:class:`PrefixMemo`, ~3 MB), so the next completion of the same prompt with another
    opening prefills only what differs.
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
        self._local = threading.local()

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

    def _memo(self) -> PrefixMemo:
        memo: PrefixMemo | None = getattr(self._local, "memo", None)
        if memo is None:
            memo = self._local.memo = PrefixMemo()
        return memo

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
                memo=self._memo(),
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
