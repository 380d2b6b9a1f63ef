"""Binary logistic regression on a LIBSVM data set.

f(w) = (1/N) sum_i log(1 + exp(-y_i x_i^T w)) + (l2/2) ||w||^2,   y_i in {-1, +1},
with a constant feature appended when ``bias`` is true (the bias is regularised too, which keeps
the problem strongly convex when ``l2 > 0``). The reference optimum f* comes from
``reference.cached_solve``; ``evaluate`` reports the gap f(w) - f*.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.problems.logreg import datasets
from optbench.problems.logreg.reference import cached_solve


class LogisticRegression(FiniteSumProblem):
    """L2-regularised logistic regression; oracles in torch on the run's device and dtype.

    Args:
        dataset: a vendored set (``heart_scale``, ``a9a``, ...) or a path to a LIBSVM file.
        test: test file: ``auto`` (the vendored set's own, e.g. a9a.t), ``null``, a name or path.
        n_features: feature count (default: the vendored set's, else the file's highest index).
        l2: L2 regularisation weight (>= 0).
        bias: append a constant feature.
        reference_tol: gradient norm to which f* is computed.
    """

    headline = ("gap", "min")

    def __init__(
        self,
        dataset: str = "heart_scale",
        test: str | None = "auto",
        n_features: int | None = None,
        l2: float = 1e-4,
        bias: bool = True,
        reference_tol: float = 1e-10,
    ) -> None:
        super().__init__()
        if l2 < 0:
            raise ConfigError(f"l2: must be >= 0, got {l2}")
        if reference_tol <= 0:
            raise ConfigError(f"reference_tol: must be > 0, got {reference_tol}")
        if n_features is not None and n_features < 1:
            raise ConfigError(f"n_features: must be >= 1, got {n_features}")
        self.dataset, self.test, self.n_features = dataset, test, n_features
        self.l2, self.bias, self.reference_tol = l2, bias, reference_tol
        self.f_star: float | None = None
        self._facts: dict[str, Any] = {}

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        self._data_dir = ctx.data_dir
        path, entry = datasets.resolve(self.dataset, ctx.data_dir, "problem.dataset")
        n_features = self.n_features or (entry.n_features if entry else None)
        train, classes = datasets.load(path, n_features)
        test_path = self._test_path(entry)
        test = None
        if test_path is not None:
            test, _ = datasets.load(test_path, train.X.shape[1], classes)

        X = self._design(train.X)
        self.n_samples, self.dim = X.shape
        self.X, self.y = ctx.tensor(X), ctx.tensor(train.y)
        self.X_test = self.y_test = None
        if test is not None:
            self.X_test, self.y_test = ctx.tensor(self._design(test.X)), ctx.tensor(test.y)

        key = ["v1", train.sha256, X.shape[1], self.bias, self.l2, self.reference_tol]
        reference = cached_solve(ctx.cache, key, X, train.y, self.l2, self.reference_tol)
        self.f_star = reference["f_star"] if reference["converged"] else None
        self._facts = {
            "source": str(path),
            "sha256": train.sha256,
            "n_samples": self.n_samples,
            "dim": self.dim,
            "n_test": 0 if test is None else len(test.y),
            "f_star": self.f_star,
            "f_star_grad_norm": reference["grad_norm"],
            "f_star_solver": reference["solver"],
        }

    def _test_path(self, entry: datasets.DatasetFiles | None) -> Any:
        if self.test is None or self.test.lower() in ("none", "null"):
            return None
        if self.test == "auto":
            return self._data_dir / datasets.LIBSVM / entry.test if entry and entry.test else None
        return datasets.resolve(self.test, self._data_dir, "problem.test")[0]

    def _design(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([X, np.ones((X.shape[0], 1))]) if self.bias else X

    def describe(self) -> dict[str, Any]:
        return dict(self._facts)

    # -- oracles ---------------------------------------------------------------------------------
    def _rows(self, batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.X, self.y) if batch is None else (self.X[batch], self.y[batch])

    def _loss(
        self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = y * (X @ w)
        return F.softplus(-z).mean() + 0.5 * self.l2 * (w @ w), z

    def _loss_grad(
        self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        loss, z = self._loss(w, X, y)
        grad = -(X.T @ (y * torch.sigmoid(-z))) / len(y) + self.l2 * w
        return float(loss), grad

    def loss(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> float:
        self._count("loss", batch)
        return float(self._loss(x, *self._rows(batch))[0])

    def loss_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        self._count("grad", batch)
        return self._loss_grad(x, *self._rows(batch))

    def hvp(
        self, x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._count("hvp", batch)
        X, y = self._rows(batch)
        s = torch.sigmoid(y * (X @ x))
        return X.T @ (s * (1 - s) * (X @ v)) / len(y) + self.l2 * v

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        self._count("hessian", None)
        s = torch.sigmoid(self.y * (self.X @ x))
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        return (self.X.T * (s * (1 - s))) @ self.X / self.n_samples + self.l2 * eye

    def initial_point(self) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=self.X.dtype, device=self.X.device)

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, solution: torch.Tensor) -> dict[str, float]:
        w = solution.detach()
        loss, grad = self._loss_grad(w, self.X, self.y)
        metrics = {
            "train_loss": loss,
            "grad_norm": float(torch.linalg.vector_norm(grad)),
            "train_acc": float((self.y * (self.X @ w) > 0).double().mean()),
        }
        if self.X_test is not None:
            z = self.y_test * (self.X_test @ w)
            metrics["test_loss"] = float(F.softplus(-z).mean())  # unregularised log-loss
            metrics["test_acc"] = float((z > 0).double().mean())
        if self.f_star is not None:
            metrics["gap"] = loss - self.f_star
        return metrics
