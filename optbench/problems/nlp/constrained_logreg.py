"""Constrained logistic regression on a LIBSVM data set (Hong, Na, Mahoney, Kolar, ICML 2023,
Section 5, "constrained logistic regression").

    min_w  f(w) = (1/N) sum_i log(1 + exp(-y_i x_i^T w))
    s.t.   A w = b  (A: 10 x n, b: 10, entries N(0, 1) drawn from the run's seed),
           ||w||^2 = 1                                                        (m = 11)

with w0 = 1 (all ones) and lambda0 = 1 (all ones), as in the authors' code. Derivatives are
analytic: grad f = -(1/N) X^T (y * sigmoid(-z)), grad^2 f = (1/N) X^T diag(s (1 - s)) X with
z = y * (X w) and s = sigmoid(z); J = [A; 2 w^T]; the Hessian of the Lagrangian is
grad^2 f + 2 lambda_11 I (the linear rows contribute nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.problems.logreg import datasets
from optbench.problems.logreg.reference import logistic_hessian, logistic_objective
from optbench.problems.nlp.scoring import ScoredNLP


class ConstrainedLogReg(ScoredNLP):
    """Logistic loss under ``A w = b`` and ``||w||^2 = 1``.

    Args:
        dataset: a vendored LIBSVM set (ionosphere_scale, mushrooms, sonar_scale, splice_scale,
            a9a, w8a, ...) or a path to a LIBSVM file.
        n_linear: rows of the random linear constraint ``A w = b`` (10 in the paper).
        x0: value of every entry of the starting point w0.
        lambda0: value of every entry of the starting multipliers.
    """

    def __init__(
        self,
        dataset: str = "ionosphere_scale",
        n_linear: int = 10,
        x0: float = 1.0,
        lambda0: float = 1.0,
    ) -> None:
        super().__init__()
        if n_linear < 0:
            raise ConfigError(f"n_linear: must be >= 0, got {n_linear}")
        self.dataset, self.n_linear = dataset, n_linear
        self.x0_value, self.lambda0_value = x0, lambda0
        self._facts: dict[str, Any] = {}

    def setup(self, ctx: RunContext) -> None:
        self.check_context(ctx)
        path, entry = datasets.resolve(self.dataset, ctx.data_dir, "problem.dataset")
        data, _ = datasets.load(path, entry.n_features if entry else None)
        self.X, self.y = data.X, data.y
        self.n_samples, self.n = self.X.shape
        if self.n_linear >= self.n:
            raise ConfigError(
                f"problem.n_linear: {self.n_linear} linear rows leave no freedom in "
                f"{self.n} variables (need n_linear < n)"
            )
        self.m = self.n_linear + 1
        rng = ctx.problem_random.numpy
        self.A = rng.standard_normal((self.n_linear, self.n))
        self.b = rng.standard_normal(self.n_linear)
        self._facts = {
            "source": str(path),
            "sha256": data.sha256,
            "n_samples": self.n_samples,
            "n": self.n,
            "m": self.m,
        }

    def describe(self) -> dict[str, Any]:
        return dict(self._facts)

    def initial_point(self) -> np.ndarray:
        return np.full(self.n, float(self.x0_value))

    def initial_multiplier(self) -> np.ndarray:
        return np.full(self.m, float(self.lambda0_value))

    # -- oracles ---------------------------------------------------------------------------------
    def _margins(self, w: np.ndarray) -> np.ndarray:
        return self.y * (self.X @ w)

    def _f(self, w: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, -self._margins(w))))

    def _grad(self, w: np.ndarray) -> np.ndarray:
        return self._f_grad(w)[1]

    def _f_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        return logistic_objective(w, self.X, self.y, 0.0)

    def _c(self, w: np.ndarray) -> np.ndarray:
        return np.concatenate([self.A @ w - self.b, [w @ w - 1.0]])

    def _jac(self, w: np.ndarray) -> np.ndarray:
        return np.vstack([self.A, 2.0 * w])

    def _hess_obj(self, w: np.ndarray) -> np.ndarray:
        return logistic_hessian(w, self.X, self.y, 0.0)

    def _hess_lag(self, w: np.ndarray, lam: np.ndarray) -> np.ndarray:
        hessian = self._hess_obj(w)
        hessian[np.diag_indices(self.n)] += 2.0 * lam[-1]
        return hessian

    def _hess_lag_vec(self, w: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = expit(self._margins(w))
        return self.X.T @ (s * (1.0 - s) * (self.X @ v)) / self.n_samples + 2.0 * lam[-1] * v
