"""Closed forms of L2-regularised softmax (multinomial logistic) regression, in torch.

With features augmented by a constant 1, X (n x p), labels one-hot Y (n x K), parameters W
(K x p) flattened row-major into w (index a * p + j), logits Z = X W^T, probabilities
P = softmax(Z) row-wise:

  f(w)      = (1/n) sum_i [logsumexp(z_i) - z_{i, y_i}] + (l2/2) ||w||^2
  grad f(w) = vec((1/n) (P - Y)^T X) + l2 w
  H(w)      = (1/n) sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T + l2 I

and two curvature approximations (Semenov, Jaggi, Doikov 2025, the "weighted Gauss-Newton"
approximation of a log-sum-exp, and the empirical Fisher):

  weighted Gauss-Newton: (1/n) sum_i diag(p_i) kron x_i x_i^T + l2 I   (drops -p_i p_i^T; >= H)
  empirical Fisher:      (1/n) sum_i (p_i - y_i)(p_i - y_i)^T kron x_i x_i^T + l2 I
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def loss_grad(
    w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float
) -> tuple[float, torch.Tensor]:
    W = w.view(n_classes, X.shape[1])
    Z = X @ W.T
    loss = F.cross_entropy(Z, y) + 0.5 * l2 * (w @ w)
    R = torch.softmax(Z, dim=1)
    R[torch.arange(len(y)), y] -= 1.0
    return float(loss), (R.T @ X / len(y)).reshape(-1) + l2 * w


def _kron_rows(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Row i: A_i kron x_i (n x K p)."""
    return (A[:, :, None] * X[:, None, :]).reshape(len(X), -1)


def hessian(
    w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float
) -> torch.Tensor:
    P = torch.softmax(X @ w.view(n_classes, X.shape[1]).T, dim=1)
    Z = _kron_rows(P, X)
    return weighted_gauss_newton(w, X, y, n_classes, l2) - Z.T @ Z / len(y)


def weighted_gauss_newton(
    w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float
) -> torch.Tensor:
    P = torch.softmax(X @ w.view(n_classes, X.shape[1]).T, dim=1)
    p = X.shape[1]
    H = torch.zeros(n_classes * p, n_classes * p, dtype=X.dtype, device=X.device)
    for a in range(n_classes):
        block = slice(a * p, (a + 1) * p)
        H[block, block] = (X.T * P[:, a]) @ X / len(y)
    return H + l2 * torch.eye(len(H), dtype=X.dtype, device=X.device)


def empirical_fisher(
    w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float
) -> torch.Tensor:
    R = torch.softmax(X @ w.view(n_classes, X.shape[1]).T, dim=1)
    R[torch.arange(len(y)), y] -= 1.0
    G = _kron_rows(R, X)
    return G.T @ G / len(y) + l2 * torch.eye(G.shape[1], dtype=X.dtype, device=X.device)
