"""The problem contracts.

A problem owns its data, its oracles and its scoring: it *scores*, the algorithm only *proposes*.
Every algorithm paired with a problem is measured by the same ``evaluate`` and charged in the same
oracle units, which is what makes a comparison fair.

Life cycle, driven by the runner:

1. ``__init__(**config)``: store the hyperparameters from the YAML (cheap, no data loaded). Raise
   ``ConfigError`` for a value out of range, with a message starting with the parameter's name.
2. ``setup(ctx)``: load data, build tensors on ``ctx.device`` with ``ctx.dtype``, draw any random
   instance from ``ctx.generator`` / ``ctx.rng``. Raise ``DataError`` naming the file for bad data.
3. oracles, called by the algorithm; each call is counted in ``self.counters``.
4. ``evaluate(solution)``: the metrics of a proposed solution, called by the runner outside the
   algorithm's clock. Deterministic; must not touch the counters.
5. ``describe()``: sizes and facts worth logging (logged once per run as ``problem.*`` tags).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
import torch

from optbench.platform.context import RunContext
from optbench.platform.errors import ConfigError, DeviceError


class ProblemKind(StrEnum):
    """The oracle interface a problem offers; an algorithm declares the kinds it accepts."""

    #: empirical risk (1/N) sum_i f_i(x): full and minibatch loss, gradient, Hessian-vector product.
    FINITE_SUM = "finite_sum"
    #: equality-constrained program min f(x) s.t. c(x) = 0: f, grad f, c, J, Hessian of the
    #: Lagrangian, x0, lambda0.
    NLP = "nlp"
    #: a differentiable simulator of an inventory network over demand samples.
    INVENTORY = "inventory"
    #: a stream of related linear systems; the cost of an instance is the solver's iteration count.
    PARAMETER_SEQUENCE = "parameter_sequence"
    #: a stream of token batches with router scores; the cost is the expert load.
    ROUTING_STREAM = "routing_stream"


class Problem(ABC):
    """Base of every problem. Subclasses set ``kind`` and implement the life cycle above."""

    kind: ClassVar[ProblemKind]

    def __init__(self) -> None:
        #: oracle calls by name (e.g. ``grad``, ``hvp``, ``samples``); reported at every evaluation.
        self.counters: Counter[str] = Counter()

    @abstractmethod
    def setup(self, ctx: RunContext) -> None:
        """Load data and build the instance on ``ctx.device`` / ``ctx.dtype``."""

    @abstractmethod
    def evaluate(self, solution: Any) -> dict[str, float]:
        """Metrics of ``solution`` (losses, residuals, gaps). Deterministic, uncounted."""

    def describe(self) -> dict[str, Any]:
        """Sizes and facts worth logging: dimensions, sample counts, known optimum, source file."""
        return {}


class FiniteSumProblem(Problem):
    """``f(x) = (1/N) sum_i f_i(x) + r(x)`` over ``N = n_samples`` samples, ``x`` in R^dim.

    ``batch`` arguments are index tensors (on ``ctx.device``) selecting the samples of a
    minibatch; ``None`` means the full sum. Oracles count calls under ``loss``, ``grad``, ``hvp``
    and ``hessian``, and the samples they touch under ``samples`` (so ``samples / N`` is the
    number of data passes an algorithm used).
    """

    kind = ProblemKind.FINITE_SUM
    n_samples: int
    dim: int

    @abstractmethod
    def initial_point(self) -> torch.Tensor:
        """The starting point x0 (a fresh tensor the algorithm may modify)."""

    @abstractmethod
    def loss(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> float:
        """``f(x)`` on the batch (mean over its samples plus the regulariser)."""

    @abstractmethod
    def loss_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        """``(f(x), grad f(x))`` on the batch."""

    @abstractmethod
    def hvp(
        self, x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The Hessian-vector product ``H(x) v`` on the batch."""

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The full Hessian (dim x dim). Default: ``dim`` Hessian-vector products."""
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        return torch.stack([self.hvp(x, eye[i]) for i in range(self.dim)], dim=1)

    def _count(self, oracle: str, batch: torch.Tensor | None) -> None:
        self.counters[oracle] += 1
        self.counters["samples"] += self.n_samples if batch is None else len(batch)


# ================================================================================================
# Kind ``nlp``: equality-constrained nonlinear programs (CUTEst, constrained logistic regression,
# PDE-constrained control).
# ================================================================================================


@dataclass
class NLPIterate:
    """A primal-dual point of an ``NLPProblem``: ``x`` in R^n and multipliers ``lam`` in R^m.

    ``lam=None`` (methods that keep no multipliers, e.g. SLSQP's callback) means the problem
    scores ``x`` with its least-squares multipliers ``argmin_lam ||grad f(x) + J(x)^T lam||``.
    """

    x: np.ndarray
    lam: np.ndarray | None = None


class NLPProblem(Problem):
    """``min f(x)  s.t.  c(x) = 0`` with ``x`` in R^n and ``c: R^n -> R^m``.

    Conventions (the spec every ``nlp`` problem and algorithm follows):

    - Lagrangian ``L(x, lam) = f(x) + lam^T c(x)``; ``J(x)`` is the m x n Jacobian of ``c``.
    - Vectors are 1-D NumPy float64 arrays; matrices are dense ``np.ndarray`` or SciPy sparse
      (algorithms accept both). The family computes with NumPy/SciPy on the CPU: S2MPJ's CUTEst
      oracles and SciPy's sparse solvers and GMRES are CPU NumPy code. ``check_context`` refuses
      another device or dtype with a one-line error.
    - Public oracles are counted in ``self.counters`` (keys ``f``, ``grad``, ``c``, ``jac``,
      ``hess``, ``hvp``; ``evaluations`` is their total, the cost unit of the suite reports).
      Combined oracles count each part (``f_grad`` counts ``f`` and ``grad``).
    - Subclasses implement the uncounted ``_f``, ``_grad``, ``_c``, ``_jac``, ``_hess_lag`` and
      may override ``_f_grad``, ``_c_jac``, ``_hess_obj``, ``_hess_lag_vec`` when a combined
      evaluation is cheaper. ``evaluate`` uses only the uncounted ones.
    - ``evaluate(NLPIterate | x)`` returns ``f``, ``c_norm`` (||c||_2), ``grad_lag_norm``
      (||grad_x L||_2), ``kkt`` (||(grad_x L, c)||_2) and, when the optimal value ``f_star`` is
      known, ``gap`` = |f - f_star|.
    """

    kind = ProblemKind.NLP
    #: number of variables and of equality constraints (set in ``setup``).
    n: int
    m: int
    #: known optimal objective value, or None.
    f_star: float | None = None

    ORACLES: ClassVar[tuple[str, ...]] = ("f", "grad", "c", "jac", "hess", "hvp")

    @staticmethod
    def check_context(ctx: RunContext) -> None:
        """Refuse a device or dtype the NumPy/SciPy family cannot honour."""
        if ctx.device.type != "cpu":
            raise DeviceError(
                f"device.type: nlp problems compute with NumPy/SciPy on the CPU, got {ctx.device}"
            )
        if ctx.dtype != torch.float64:
            raise ConfigError(f"device.dtype: nlp problems compute in float64, got {ctx.dtype}")

    # -- starting point --------------------------------------------------------------------------
    @abstractmethod
    def initial_point(self) -> np.ndarray:
        """x0 (a fresh array the algorithm may modify)."""

    @abstractmethod
    def initial_multiplier(self) -> np.ndarray:
        """lambda0 (a fresh array)."""

    # -- uncounted implementations ---------------------------------------------------------------
    @abstractmethod
    def _f(self, x: np.ndarray) -> float: ...

    @abstractmethod
    def _grad(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _c(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _jac(self, x: np.ndarray) -> Any: ...

    @abstractmethod
    def _hess_lag(self, x: np.ndarray, lam: np.ndarray) -> Any: ...

    def _f_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self._f(x), self._grad(x)

    def _c_jac(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        return self._c(x), self._jac(x)

    def _hess_obj(self, x: np.ndarray) -> Any:
        return self._hess_lag(x, np.zeros(self.m))

    def _hess_lag_vec(self, x: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.asarray(self._hess_lag(x, lam) @ v).ravel()

    # -- counted oracles -------------------------------------------------------------------------
    def _count(self, *oracles: str) -> None:
        for oracle in oracles:
            self.counters[oracle] += 1
        self.counters["evaluations"] += len(oracles)

    def f(self, x: np.ndarray) -> float:
        """``f(x)``."""
        self._count("f")
        return self._f(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``grad f(x)`` (n,)."""
        self._count("grad")
        return self._grad(x)

    def f_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))``; counts ``f`` and ``grad``."""
        self._count("f", "grad")
        return self._f_grad(x)

    def c(self, x: np.ndarray) -> np.ndarray:
        """``c(x)`` (m,)."""
        self._count("c")
        return self._c(x)

    def jac(self, x: np.ndarray) -> Any:
        """``J(x)`` (m x n, dense or sparse)."""
        self._count("jac")
        return self._jac(x)

    def c_jac(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """``(c(x), J(x))``; counts ``c`` and ``jac``."""
        self._count("c", "jac")
        return self._c_jac(x)

    def hess_lag(self, x: np.ndarray, lam: np.ndarray) -> Any:
        """``grad^2_xx L(x, lam)`` (n x n, symmetric, dense or sparse); counts ``hess``."""
        self._count("hess")
        return self._hess_lag(x, lam)

    def hess_obj(self, x: np.ndarray) -> Any:
        """``grad^2 f(x)`` (the Lagrangian Hessian at lam = 0); counts ``hess``."""
        self._count("hess")
        return self._hess_obj(x)

    def hess_lag_vec(self, x: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``grad^2_xx L(x, lam) v`` (n,); counts ``hvp``."""
        self._count("hvp")
        return self._hess_lag_vec(x, lam, v)

    # -- scoring ---------------------------------------------------------------------------------
    def least_squares_multiplier(self, x: np.ndarray) -> np.ndarray:
        """``argmin_lam ||grad f(x) + J(x)^T lam||_2`` (uncounted)."""
        jac = self._jac(x)
        dense = jac.toarray() if hasattr(jac, "toarray") else np.asarray(jac)
        return np.linalg.lstsq(dense.T, -self._grad(x), rcond=None)[0]

    def evaluate(self, solution: NLPIterate | np.ndarray) -> dict[str, float]:
        if isinstance(solution, NLPIterate):
            x, lam = solution.x, solution.lam
        else:
            x, lam = np.asarray(solution), None
        if lam is None:
            lam = self.least_squares_multiplier(x)
        f, grad = self._f_grad(x)
        c, jac = self._c_jac(x)
        grad_lag = grad + np.asarray(jac.T @ lam).ravel()
        c_norm = float(np.linalg.norm(c))
        grad_lag_norm = float(np.linalg.norm(grad_lag))
        metrics = {
            "f": float(f),
            "c_norm": c_norm,
            "grad_lag_norm": grad_lag_norm,
            "kkt": float(np.hypot(c_norm, grad_lag_norm)),
        }
        if self.f_star is not None:
            metrics["gap"] = abs(float(f) - self.f_star)
        return metrics
