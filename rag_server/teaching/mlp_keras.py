"""Lesson 3 — the same perceptron in Keras 3, running on the PyTorch backend.

Keras 3 is a front end over several back ends (JAX, TensorFlow, PyTorch). This project has no
TensorFlow, so the backend is chosen *before* ``import keras`` — Keras reads ``KERAS_BACKEND`` once,
at import time. With the torch backend every Keras tensor is a ``torch.Tensor``.

1. ``keras.utils.set_random_seed(42)`` seeds Python, NumPy, the backend and Keras's own global
   seed generator, so the input and the initial weights repeat on every run.
2. ``X ~ N(0, 1)``, shape (4, 3).
3. ``Dense(4, activation="relu")``:  ``H = ReLU(X K1 + b1)``, kernel K1: (3, 4), b1: (4,) → (4, 4).
   Keras stores the kernel as (in, out), the transpose of ``nn.Linear``'s (out, in) weight.
4. ``Dense(1)``:  ``Y = H K2 + b2``, K2: (4, 1) → Y: (4, 1).

Same shapes and the same 21 parameters as lesson 2, but a different first output: Keras
initialises kernels with Glorot-uniform, U(−√(6 / (fan_in + fan_out)), +…), and biases with zeros,
while PyTorch uses Kaiming-uniform for both — and the two libraries draw from different streams.

Run: ``python -m rag_server.teaching.mlp_keras``
"""

from __future__ import annotations

import os

# Must precede the first `import keras` anywhere in the process; setdefault respects a user's choice.
os.environ.setdefault("KERAS_BACKEND", "torch")

from typing import NamedTuple

from ..errors import MissingDependencyError

try:
    import keras
except ImportError as exc:  # the lessons' extra
    raise MissingDependencyError("keras", "teaching") from exc


class ForwardPass(NamedTuple):
    """What the lesson prints."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    first_output: float  # Y[0, 0]


def build_mlp(n_in: int = 3, n_hidden: int = 4, n_out: int = 1) -> keras.Sequential:
    """Input(n_in) → Dense(n_hidden, ReLU) → Dense(n_out). The explicit Input builds the weights now."""
    return keras.Sequential(
        [
            keras.Input(shape=(n_in,)),
            keras.layers.Dense(n_hidden, activation="relu"),
            keras.layers.Dense(n_out),
        ]
    )


def forward_pass(seed: int = 42, batch: int = 4) -> ForwardPass:
    """Seed, draw X (batch, 3), build the model, compute Y = model(X)."""
    keras.utils.set_random_seed(seed)  # also resets Keras's global seed generator: repeatable calls
    x = keras.random.normal((batch, 3))
    model = build_mlp()
    # Inference only: cut the output from the autograd graph (torch's `no_grad`, said the Keras way).
    y = keras.ops.stop_gradient(model(x))
    first = float(y[0, 0])  # a one-element backend tensor (here a torch.Tensor) → Python float
    return ForwardPass(input_shape=tuple(x.shape), output_shape=tuple(y.shape), first_output=first)


def main() -> None:
    result = forward_pass()
    print(f"Input shape: {result.input_shape}")
    print(f"Output shape: {result.output_shape}")
    print(f"First output: {result.first_output:.4f}")


if __name__ == "__main__":
    main()
