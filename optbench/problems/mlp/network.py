"""A fully connected network whose parameters are one flat vector.

Layer l maps h (n x in_l) to h @ W_l[:, :in_l]^T + W_l[:, in_l] (an (out_l x (in_l + 1))
matrix: weights with the bias as last column), followed by the activation on every layer but
the last. The flat vector is the concatenation of the W_l in row-major order, so with no hidden
layer it is the (classes x (features + 1)) weight matrix of softmax regression on the features
augmented with a constant 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "softplus": F.softplus,
}


class FlatNetwork:
    """Shapes of the layers of a ``sizes[0] -> ... -> sizes[-1]`` network and its forward pass."""

    def __init__(self, sizes: list[int], activation: str) -> None:
        self.sizes = list(sizes)
        self.activation = ACTIVATIONS[activation]
        self.shapes = [(out, inp + 1) for inp, out in itertools.pairwise(sizes)]
        self.dim = sum(out * inp for out, inp in self.shapes)

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The layer matrices (views of ``x``)."""
        out, start = [], 0
        for rows, cols in self.shapes:
            out.append(x[start : start + rows * cols].view(rows, cols))
            start += rows * cols
        return out

    def forward(self, x: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The outputs (logits) for ``inputs`` (n x sizes[0])."""
        h = inputs
        layers = self.layers(x)
        for i, W in enumerate(layers):
            h = h @ W[:, :-1].T + W[:, -1]
            if i < len(layers) - 1:
                h = self.activation(h)
        return h

    def initial_point(self, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        """PyTorch's default ``nn.Linear`` initialisation, U(-1/sqrt(in), 1/sqrt(in)) for weights
        and biases alike, drawn from ``generator``; zeros when there is no hidden layer (the
        convex case starts where logistic regression does)."""
        if len(self.shapes) == 1:
            return torch.zeros(self.dim, dtype=dtype)
        parts = []
        for rows, cols in self.shapes:
            bound = (cols - 1) ** -0.5
            u = torch.rand(
                rows * cols, generator=generator, dtype=torch.float64, device=generator.device
            )
            parts.append(((2 * u - 1) * bound).to(dtype))
        return torch.cat(parts)
