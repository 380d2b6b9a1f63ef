"""Binary logistic regression on a LIBSVM data set (or, with ``loss=squared``, least squares on
the same data).

f(w) = (1/N) sum_i log(1 + exp(-y_i x_i^T w)) + (l2/2) ||w||^2,   y_i in {-1, +1},
with a constant feature appended when ``bias`` is true (the bias is regularised too, which keeps
the problem strongly convex when ``l2 > 0``); ``loss=squared`` replaces the log-loss by
(1/2)(x_i^T w - y_i)^2. The reference optimum f* comes from ``reference.cached_solve`` (the
normal equations for the squared loss); ``evaluate`` reports the gap f(w) - f*.

Besides the finite-sum oracles it offers the optional ones of ``optbench.contracts.finite_sum``:
per-sample gradients, the target space (the margins x_i^T w, one target per sample) and dense
curvature matrices (Hessian = Gauss-Newton, the weighted Gauss-Newton bound, empirical Fisher).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import CURVATURES, FiniteSumProblem, unknown_curvature
from optbench.problems.logreg import datasets
from optbench.problems.logreg.reference import cached_solve

LOSSES = ("logistic", "squared")


class LogisticRegression(FiniteSumProblem):
    """L2-regularised logistic regression; oracles in torch on the run's device and dtype.

    Args:
        dataset: a vendored set (``heart_scale``, ``a9a``, ...) or a path to a LIBSVM file.
        test: test file: ``auto`` (the vendored set's own, e.g. a9a.t), ``null``, a name or path.
        n_features: feature count (default: the vendored set's, else the file's highest index).
        l2: L2 regularisation weight (>= 0).
        bias: append a constant feature.
        reference_tol: gradient norm to which f* is computed.
        loss: ``logistic`` (default) or ``squared``.
    """

    headline = ("gap", "min")
    n_targets = 1

    def __init__(
        self,
        dataset: str = "heart_scale",
        test: str | None = "auto",
        n_features: int | None = None,
        l2: float = 1e-4,
        bias: bool = True,
        reference_tol: float = 1e-10,
        loss: str = "logistic",
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"loss: unknown '{loss}' (known: {', '.join(LOSSES)})")
        if l2 < 0:
            raise ConfigError(f"l2: must be >= 0, got {l2}")
        if reference_tol <= 0:
            raise ConfigError(f"reference_tol: must be > 0, got {reference_tol}")
        if n_features is not None and n_features < 1:
            raise ConfigError(f"n_features: must be >= 1, got {n_features}")
        self.dataset, self.test, self.n_features = dataset, test, n_features
        self.l2, self.bias, self.reference_tol = l2, bias, reference_tol
        self.loss_kind = loss
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
        if self.loss_kind == "squared":
            key.append("squared")  # the logistic key stays as it was: its cache entries stay valid
        reference = cached_solve(
            ctx.cache, key, X, train.y, self.l2, self.reference_tol, self.loss_kind
        )
        self.f_star = reference["f_star"] if reference["converged"] else None
        self._facts = {
            "source": str(path),
            "loss": self.loss_kind,
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

    def _terms(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample losses l_i at margins z = X w."""
        if self.loss_kind == "squared":
            return 0.5 * (z - y) ** 2
        return F.softplus(-y * z)

    def _dterms(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Their derivatives dl_i/dz_i."""
        if self.loss_kind == "squared":
            return z - y
        return -y * torch.sigmoid(-y * z)

    def _loss(
        self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = X @ w
        return self._terms(z, y).mean() + 0.5 * self.l2 * (w @ w), z

    def _loss_grad(
        self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        loss, z = self._loss(w, X, y)
        grad = X.T @ self._dterms(z, y) / len(y) + self.l2 * w
        return float(loss), grad

    def _weights(
        self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, kind: str
    ) -> torch.Tensor:
        """Per-sample weights s_i of a curvature (1/n) sum_i s_i x_i x_i^T + l2 I."""
        z = X @ w
        if kind == "fisher":
            return self._dterms(z, y) ** 2
        if self.loss_kind == "squared":
            return torch.ones_like(z)
        margin = torch.sigmoid(y * z)
        if kind == "weighted_gauss_newton":  # log(e^0 + e^{-m}): keep diag(pi), drop pi pi^T
            return 1 - margin
        return margin * (1 - margin)  # Hessian = Gauss-Newton (canonical link)

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
        return X.T @ (self._weights(x, X, y, "hessian") * (X @ v)) / len(y) + self.l2 * v

    def hessian(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        return self.curvature(x, "hessian", batch)

    def curvature(
        self, x: torch.Tensor, kind: str, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(1/n) sum_i s_i x_i x_i^T + l2 I with s_i from ``_weights`` (``oracles.CURVATURES``;
        the squared loss has no log-sum-exp to weight)."""
        offered = (
            CURVATURES if self.loss_kind == "logistic" else ("hessian", "gauss_newton", "fisher")
        )
        if kind not in offered:
            raise unknown_curvature(kind, offered)
        self._count("hessian", batch)
        X, y = self._rows(batch)
        s = self._weights(x, X, y, kind)
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        return (X.T * s) @ X / len(y) + self.l2 * eye

    def per_sample_grads(self, x: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        self._count("grad", batch)
        X, y = self._rows(batch)
        return self._dterms(X @ x, y)[:, None] * X + self.l2 * x

    # target space: the margins z_i = x_i^T w
    def target_pullback(
        self, x: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        self.counters["forward"] += 1
        X, _ = self._rows(batch)

        def pullback(v: torch.Tensor) -> torch.Tensor:
            self.counters["vjp"] += 1
            return X.T @ v.reshape(-1)

        return (X @ x).unsqueeze(1), pullback

    def target_grads(
        self, z: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[float, torch.Tensor]:
        self._count("target_grad", batch)
        _, y = self._rows(batch)
        margins = z.reshape(-1)
        return float(self._terms(margins, y).mean()), self._dterms(margins, y).unsqueeze(1)

    def target_loss(self, z: torch.Tensor, batch: torch.Tensor | None) -> float:
        self.counters["target_loss"] += 1
        return float(self._terms(z.reshape(-1), self._rows(batch)[1]).mean())

    def regularizer(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        return 0.5 * self.l2 * float(x @ x), self.l2 * x

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
            z = self.X_test @ w
            metrics["test_loss"] = float(self._terms(z, self.y_test).mean())  # unregularised
            metrics["test_acc"] = float((self.y_test * z > 0).double().mean())
        if self.f_star is not None:
            metrics["gap"] = loss - self.f_star
        return metrics
