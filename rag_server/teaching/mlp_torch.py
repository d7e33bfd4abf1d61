"""Lesson 2 — a multi-layer perceptron forward pass in PyTorch.

Network: 3 inputs → 4 hidden units (ReLU) → 1 output, applied to a batch of B = 4 random rows.

1. ``torch.manual_seed(42)`` fixes the random stream, so the input *and* the initial weights are
   identical on every run (the input is drawn first, then the layers are created).
2. ``X ~ N(0, 1)``, shape (B, 3) = (4, 3): one row per example, one column per feature.
3. Hidden layer::

       H = ReLU(X W1ᵀ + b1)        W1: (4, 3), b1: (4,)  →  H: (4, 4)

   ``ReLU(z) = max(0, z)`` is what makes the network non-linear: without it the two layers would
   collapse into a single linear map ``X (W2 W1)ᵀ + const``.
4. Output layer::

       Y = H W2ᵀ + b2              W2: (1, 4), b2: (1,)  →  Y: (4, 1), one number per row

``nn.Linear`` stores its weight as (out, in) and draws weight and bias from
U(−1/√fan_in, 1/√fan_in) (Kaiming-uniform with a = √5). Nothing is trained, so the output value
is arbitrary; the point is the shapes and the arithmetic. Parameters: 3·4 + 4 + 4·1 + 1 = 21.

Run: ``python -m rag_server.teaching.mlp_torch``
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class ForwardPass(NamedTuple):
    """What the lesson prints."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    first_output: float  # Y[0, 0]


def build_mlp(n_in: int = 3, n_hidden: int = 4, n_out: int = 1) -> nn.Sequential:
    """Linear(n_in → n_hidden) → ReLU → Linear(n_hidden → n_out)."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


def forward_pass(seed: int = 42, batch: int = 4) -> ForwardPass:
    """Seed, draw X (batch, 3), build the MLP, compute Y = MLP(X) without tracking gradients."""
    torch.manual_seed(seed)
    x = torch.randn(batch, 3)  # drawn before the layers: the order decides which numbers each gets
    model = build_mlp()
    with torch.no_grad():  # inference only: no graph needed for backpropagation
        y = model(x)
    return ForwardPass(input_shape=tuple(x.shape), output_shape=tuple(y.shape), first_output=float(y[0, 0]))


def main() -> None:
    result = forward_pass()
    print(f"Input shape: {result.input_shape}")
    print(f"Output shape: {result.output_shape}")
    print(f"First output: {result.first_output:.4f}")


if __name__ == "__main__":
    main()
