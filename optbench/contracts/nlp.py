"""Kind ``nlp``: equality-constrained nonlinear programs (CUTEst, constrained logistic
regression, PDE-constrained control).

The public oracles are counted here, once for every problem of the kind (OptiProfiler's one
counting wrapper): a concrete problem implements the uncounted ``_f``, ``_grad``, ... and the
counted ``f``, ``grad``, ... that algorithms call charge every method in the same units.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError, DeviceError
from optbench.contracts.problem import Problem, ProblemKind


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

    kind: ClassVar[ProblemKind] = ProblemKind.NLP
    headline = ("kkt", "min")
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


def least_squares_multiplier(grad: np.ndarray, jac: Any) -> np.ndarray:
    """``argmin_lam ||grad + J^T lam||_2``: the multipliers that best explain ``grad f(x)`` by
    the constraint gradients ``J(x)`` (dense or sparse m x n)."""
    dense = jac.toarray() if hasattr(jac, "toarray") else np.asarray(jac)
    return np.linalg.lstsq(dense.T, -grad, rcond=None)[0]
