"""A TorchScript trace of a sentence-transformers forward pass, used only where it is exact.

Encoding one query on one CPU thread spends ~3 of its ~13 ms running the Python of the model's
modules (~2,300 calls): the trace runs the same operations from C++. A trace records one path
through the Python code, so it is kept only if it gives the eager model's vectors on probe
texts of very different lengths (one token up to the truncation limit); otherwise, or on any
error, the caller keeps the eager forward pass. CPU only.

Imported when a model is loaded (it imports torch).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

log = logging.getLogger("rag_server.embedding")

PROBES = ("a", "O que é dado pessoal sensível segundo a LGPD?", "GPU tenant isolation " * 200)
"""Short, typical and truncated inputs: a trace must reproduce the eager vector for each."""

TOLERANCE = 0.0
"""Largest difference from the eager vector accepted: none, so the vectors stay the library's."""


def tensors_of(features: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensor entries of a ``preprocess`` result, in its order (the others are metadata)."""
    return {name: value for name, value in features.items() if isinstance(value, torch.Tensor)}


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence the libraries' deprecation notices, raised by the tracer reading every attribute."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class _Positional(torch.nn.Module):
    """The model's forward pass taking its input tensors positionally, as tracing needs."""

    def __init__(self, model: Any, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, tensors, strict=True)))["sentence_embedding"]


class TracedForward:
    """``model(features)["sentence_embedding"]`` for inputs with the tensors ``names``, traced."""

    def __init__(self, module: Any, names: tuple[str, ...]) -> None:
        self.module = module
        self.names = names

    def accepts(self, tensors: Mapping[str, torch.Tensor]) -> bool:
        return tuple(tensors) == self.names

    def __call__(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.module(*tensors.values())  # (1, dimension)

    @classmethod
    def build(cls, model: Any) -> TracedForward | None:
        """The traced forward pass of ``model``, or None when it is not exact or cannot be made."""
        if model.device.type != "cpu":
            return None
        try:
            with torch.inference_mode(), warnings.catch_warnings(), _quiet("sentence_transformers", "transformers"):
                warnings.simplefilter("ignore")  # the tracer's warnings about Python values it froze
                example = tensors_of(model.preprocess([PROBES[1]]))
                names = tuple(example)
                module = torch.jit.trace(_Positional(model, names), tuple(example.values()), check_trace=False)
                traced = cls(module, names)
                for text in PROBES:
                    features = model.preprocess([text])
                    tensors = tensors_of(features)
                    eager = model(features)["sentence_embedding"].float().numpy()
                    for _ in range(3):  # TorchScript optimises a graph after its first runs: check the last
                        vector = traced(tensors).float().numpy()
                    if not traced.accepts(tensors) or not np.allclose(vector, eager, rtol=0, atol=TOLERANCE):
                        log.info("query encoder: the trace differs from the model; the eager pass is kept")
                        return None
        except Exception as exc:  # tracing fails in many ways for some models; all mean "not here"
            log.info("query encoder: no trace (%s); the eager pass is kept", type(exc).__name__)
            return None
        return traced
