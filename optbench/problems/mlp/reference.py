"""The reference optimum f* of L2-regularised softmax regression (a network with no hidden
layer), by scipy's exact trust-region Newton method (``trust-exact``) on the closed forms of
``softmax``, in float64, polished by Newton steps to a gradient norm of ``tol``. Networks with
hidden layers are non-convex: no reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from optbench.problems.convex_optimum import newton_optimum
from optbench.problems.mlp import softmax


def solve(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float, tol: float) -> dict[str, Any]:
    """Minimise the regularised softmax loss on features X (already augmented with a 1)."""
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = softmax.loss_grad(torch.from_numpy(w), Xt, yt, n_classes, l2)
        return loss, grad.numpy()

    def hess(w: np.ndarray) -> np.ndarray:
        return softmax.hessian(torch.from_numpy(w), Xt, yt, n_classes, l2).numpy()

    return newton_optimum(fun, hess, np.zeros(n_classes * X.shape[1]), tol)
