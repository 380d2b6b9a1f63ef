"""SciPy's constrained solvers as optbench algorithms: what a user would pick instead.

``scipy.optimize.minimize`` runs to completion in one call; ``optbench.algorithms.lockstep`` turns
its per-iteration callback into one ``Progress`` per iteration (the solver only advances inside
the runner's ``next()``, and closing the generator stops it).

- ``ScipyTrustConstr``: ``method="trust-constr"`` (Byrd-Omojokun trust-region SQP for equality
  constraints; Lalee, Nocedal and Plantenga 1998) with exact Hessians: the objective's from
  ``hess_obj`` and the constraints' part from ``hess_lag(x, v) - grad^2 f(x)`` (dense up to
  2000 rows, sparse above, so large sparse problems stay sparse). Its multipliers
  ``v`` (Lagrangian f + v^T c) are reported with each iterate.
- ``ScipySLSQP``: ``method="SLSQP"`` (Kraft 1988), a dense quasi-Newton SQP using f, grad f, c,
  J (O(n^2) memory: for small and medium problems).
  Its callback carries no multipliers: the problem scores the iterate with least-squares
  multipliers, and so does the convergence test.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy.optimize import NonlinearConstraint, minimize

from optbench.algorithms.constrained.common import NLPAlgorithm, check_positive
from optbench.algorithms.constrained.linalg import compact, dense
from optbench.algorithms.lockstep import lockstep
from optbench.contracts.algorithm import Progress
from optbench.contracts.context import RunContext
from optbench.contracts.nlp import NLPIterate, NLPProblem, least_squares_multiplier


class ScipyTrustConstr(NLPAlgorithm):
    """``scipy.optimize.minimize(method="trust-constr")`` with exact derivatives, one
    iteration per step; converged at ||(grad_x L, c)|| <= tol from the solver's own state."""

    def __init__(
        self,
        tol: float = 1e-4,
        gtol: float = 1e-10,
        xtol: float = 1e-12,
        initial_tr_radius: float = 1.0,
        maxiter: int = 1_000_000,
    ) -> None:
        check_positive(tol=tol, gtol=gtol, xtol=xtol, initial_tr_radius=initial_tr_radius)
        self.tol, self.gtol, self.xtol = tol, gtol, xtol
        self.initial_tr_radius, self.maxiter = initial_tr_radius, maxiter

    def iterate(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        x0 = problem.initial_point()
        last: dict[str, Any] = {}  # the objective Hessian scipy asked for, and where

        def objective_hessian(x: np.ndarray) -> Any:
            last["x"], last["H"] = x.copy(), compact(problem.hess_obj(x))
            return last["H"]

        def constraint_hessian(x: np.ndarray, v: np.ndarray) -> Any:
            # scipy asks for the objective's Hessian at the same x just before: reuse it
            same = "x" in last and np.array_equal(last["x"], x)
            objective = last["H"] if same else compact(problem._hess_obj(x))
            return compact(problem.hess_lag(x, np.asarray(v))) - objective

        constraint = NonlinearConstraint(
            problem.c,
            0.0,
            0.0,
            jac=lambda x: compact(problem.jac(x)),
            hess=constraint_hessian,
        )

        def solve(callback: Callable[[Any], None]) -> Any:
            return minimize(
                problem.f_grad,
                x0,
                jac=True,
                hess=objective_hessian,
                method="trust-constr",
                constraints=[constraint],
                callback=callback,
                options={
                    "gtol": self.gtol,
                    "xtol": self.xtol,
                    "maxiter": self.maxiter,
                    "initial_tr_radius": self.initial_tr_radius,
                },
            )

        yield Progress(NLPIterate(x0.copy(), problem.initial_multiplier()))
        steps = lockstep(solve)
        while True:
            try:
                state = next(steps)
            except StopIteration as done:
                return f"scipy: {getattr(done.value, 'message', 'finished')}"
            lam = np.concatenate([np.atleast_1d(v) for v in state.v])
            kkt = float(
                np.hypot(np.linalg.norm(state.lagrangian_grad), np.linalg.norm(state.constr[0]))
            )
            yield Progress(
                NLPIterate(np.array(state.x), lam),
                {"kkt": kkt, "tr_radius": float(state.tr_radius), "cg_iterations": state.cg_niter},
                converged=kkt <= self.tol,
            )


class ScipySLSQP(NLPAlgorithm):
    """``scipy.optimize.minimize(method="SLSQP")``, one iteration per step.

    SLSQP's callback carries no multipliers. Converged when ||(grad_x L, c)|| <= tol with the
    least-squares multipliers, computed from the gradient and Jacobian SLSQP itself requested at
    the iterate (no extra oracle call); SLSQP's own ``ftol`` rule also ends the run.
    """

    def __init__(self, tol: float = 1e-4, ftol: float = 1e-12, maxiter: int = 1_000_000) -> None:
        check_positive(tol=tol, ftol=ftol)
        self.tol, self.ftol, self.maxiter = tol, ftol, maxiter

    def iterate(self, problem: NLPProblem, ctx: RunContext) -> Iterator[Progress]:
        x0 = problem.initial_point()
        seen: dict[str, OrderedDict[bytes, Any]] = {k: OrderedDict() for k in ("grad", "c", "jac")}

        def remember(name: str, x: np.ndarray, value: Any) -> Any:
            table = seen[name]
            table[x.tobytes()] = value
            if len(table) > 8:
                table.popitem(last=False)
            return value

        def f_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = problem.f_grad(x)
            return value, remember("grad", x, grad)

        def constraints(x: np.ndarray) -> np.ndarray:
            return remember("c", x, problem.c(x))

        def jacobian(x: np.ndarray) -> np.ndarray:
            return remember("jac", x, dense(problem.jac(x)))

        def kkt_at(x: np.ndarray) -> float | None:
            key = x.tobytes()
            if any(key not in table for table in seen.values()):
                return None
            grad, c, jac = (seen[name][key] for name in ("grad", "c", "jac"))
            lam = least_squares_multiplier(grad, jac)
            return float(np.hypot(np.linalg.norm(grad + jac.T @ lam), np.linalg.norm(c)))

        def solve(callback: Callable[[Any], None]) -> Any:
            return minimize(
                f_grad,
                x0,
                jac=True,
                method="SLSQP",
                constraints=[{"type": "eq", "fun": constraints, "jac": jacobian}],
                callback=callback,
                options={"ftol": self.ftol, "maxiter": self.maxiter},
            )

        yield Progress(NLPIterate(x0.copy(), None))
        steps = lockstep(solve)
        while True:
            try:
                state = next(steps)
            except StopIteration as done:
                return f"scipy: {getattr(done.value, 'message', 'finished')}"
            x = np.array(state.x)
            kkt = kkt_at(x)
            metrics = {"f": float(state.fun)}
            if kkt is not None:
                metrics["kkt"] = kkt
            yield Progress(
                NLPIterate(x, None), metrics, converged=kkt is not None and kkt <= self.tol
            )
