"""Full-batch deterministic methods on finite sums: L-BFGS (torch's and SciPy's L-BFGS-B) and
Newton's method."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from optbench.algorithms import torch_optim
from optbench.algorithms.lockstep import lockstep
from optbench.contracts.algorithm import Algorithm, Progress
from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem
from optbench.contracts.problem import Problem, ProblemKind

_THREADPOOLS = ThreadpoolController()


class LBFGS(Algorithm):
    """L-BFGS (Liu and Nocedal, 1989) on the full objective, via ``torch.optim.LBFGS``.

    One step is one L-BFGS iteration (``max_iter=1``) with a strong-Wolfe line search of up to
    ``max_line_search`` evaluations (torch's own limit is 25; torch derives it from
    ``max_eval``, which defaults to ``max_iter * 5 // 4`` = 1 for one iteration per call: no
    line search at all, so a rejected first trial step left the iterate and the memory frozen
    for the rest of the run). Progress reports the loss and gradient norm at the iterate the
    step started from (torch evaluates there first; the value its line search computed at the
    accepted point is reused, not recomputed) and the oracle calls the step made; once that
    gradient norm is at most ``tolerance_grad`` the run is converged and its solution is that
    start point (the step just taken from it is discarded).

    ``history_size`` defaults to torch's 100. Torch keeps a curvature pair only when
    y^T s > 1e-10 (an absolute threshold), so near an optimum the pairs are dropped and a short
    memory goes stale: with 10 pairs the gradient norm is still 3.7e-7 after 1000 steps on
    sonar_scale (l2 = 1e-4), with 100 pairs it is below 1e-8 after 154 steps. ``scipy_lbfgs``
    (SciPy's L-BFGS-B, a relative curvature test) is the reference implementation.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        lr: float = 1.0,
        history_size: int = 100,
        line_search: Literal["strong_wolfe", "none"] = "strong_wolfe",
        max_line_search: int = 25,
        tolerance_grad: float = 1e-8,
    ) -> None:
        if lr <= 0:
            raise ConfigError(f"lr: must be > 0, got {lr}")
        if history_size < 1:
            raise ConfigError(f"history_size: must be >= 1, got {history_size}")
        if max_line_search < 1:
            raise ConfigError(f"max_line_search: must be >= 1, got {max_line_search}")
        self.lr, self.history_size = lr, history_size
        self.line_search, self.max_line_search = line_search, max_line_search
        self.tolerance_grad = tolerance_grad

    def warm_up(self, problem: Problem) -> None:
        torch_optim.preload()  # it builds a torch.optim optimizer in run

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        param = torch.nn.Parameter(problem.initial_point())
        optimizer = torch.optim.LBFGS(
            [param],
            lr=self.lr,
            max_iter=1,
            max_eval=1 + self.max_line_search,  # the evaluation at x, then the line search
            history_size=self.history_size,
            line_search_fn=None if self.line_search == "none" else "strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
        evaluations: list[tuple[float, float]] = []  # (loss, gradient norm) per closure call
        fresh = [0]  # oracle calls this step
        cache: dict[str, Any] = {}  # the last evaluation, reused when torch asks for it again

        def closure() -> torch.Tensor:
            x = param.detach()
            if "x" in cache and torch.equal(cache["x"], x):
                loss, grad = cache["loss"], cache["grad"]
            else:
                loss, grad = problem.loss_grad(x)
                cache.update(x=x.clone(), loss=loss, grad=grad)
                fresh[0] += 1
            param.grad = grad.clone()
            evaluations.append((loss, float(torch.linalg.vector_norm(grad))))
            return torch.tensor(loss, dtype=grad.dtype)

        yield Progress(param.detach())
        while True:
            evaluations.clear()
            fresh[0] = 0
            start = param.detach().clone()
            optimizer.step(closure)
            loss, grad_norm = evaluations[0]  # at the iterate this step started from
            metrics = {"loss": loss, "grad_norm": grad_norm, "evaluations": fresh[0]}
            if grad_norm <= self.tolerance_grad:  # the start point is the solution
                yield Progress(start, metrics, converged=True)
            yield Progress(param.detach(), metrics)


class ScipyLBFGS(Algorithm):
    """SciPy's L-BFGS-B (Byrd, Lu, Nocedal and Zhu 1995; Zhu et al. 1997; SciPy's translation
    of the v3.0 code) without bounds, one iteration per step: the trusted reference L-BFGS for
    finite sums beside the torch one.

    ``scipy.optimize.minimize(method="L-BFGS-B")`` drives its own loop; it runs in lockstep
    with this generator (``optbench.algorithms.lockstep``), so each ``next()`` advances it by
    one iteration. The objective and gradient come from the problem's counted ``loss_grad`` in
    float64 NumPy. Progress reports the loss and gradient norm at the new iterate (the last
    evaluation SciPy made there) and the evaluations the iteration used; the run is converged
    when that gradient norm is at most ``tolerance_grad``. ``history_size`` (SciPy's
    ``maxcor``), ``max_line_search`` (``maxls``) keep SciPy's defaults (10, 20); its own
    stopping tests ``ftol`` and ``gtol`` are 0 by default so that ``tolerance_grad`` decides,
    as for ``lbfgs``; when SciPy stops on its own (its line search finds no decrease) the run
    ends with SciPy's message as the stop reason.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self,
        history_size: int = 10,
        max_line_search: int = 20,
        tolerance_grad: float = 1e-8,
        ftol: float = 0.0,
        gtol: float = 0.0,
    ) -> None:
        if history_size < 1:
            raise ConfigError(f"history_size: must be >= 1, got {history_size}")
        if max_line_search < 1:
            raise ConfigError(f"max_line_search: must be >= 1, got {max_line_search}")
        if ftol < 0 or gtol < 0:
            raise ConfigError(f"ftol, gtol: must be >= 0, got {ftol}, {gtol}")
        self.history_size, self.max_line_search = history_size, max_line_search
        self.tolerance_grad, self.ftol, self.gtol = tolerance_grad, ftol, gtol

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        x0 = problem.initial_point()
        last: dict[str, Any] = {}  # the latest evaluation: x, loss, gradient norm
        count = [0]

        def loss_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            loss, grad = problem.loss_grad(torch.as_tensor(x, dtype=x0.dtype, device=x0.device))
            count[0] += 1
            last.update(x=x.copy(), loss=loss, grad_norm=float(torch.linalg.vector_norm(grad)))
            return loss, grad.detach().to("cpu", torch.float64).numpy()

        threads = torch.get_num_threads()

        def solve(callback: Callable[[Any], None]) -> Any:
            # torch's intra-op thread count is per OS thread: a new thread starts with the
            # default and, measured, ran the logistic oracle 500x slower on a loaded machine
            torch.set_num_threads(threads)
            return minimize(
                loss_grad,
                x0.detach().to("cpu", torch.float64).numpy(),
                jac=True,
                method="L-BFGS-B",
                callback=callback,
                options={
                    "maxcor": self.history_size,
                    "maxls": self.max_line_search,
                    "ftol": self.ftol,
                    "gtol": self.gtol,
                    "maxiter": 2**31 - 1,
                    "maxfun": 2**31 - 1,
                },
            )

        yield Progress(x0)
        # L-BFGS-B's small LAPACK calls: a multi-threaded BLAS is 10-300x slower on a loaded
        # machine (measured 6 ms vs 0.03 ms per iteration at n = 30)
        with _THREADPOOLS.limit(limits=1, user_api="blas"):
            steps = lockstep(solve)
            while True:
                count[0] = 0
                try:
                    state = next(steps)
                except StopIteration as done:
                    return f"scipy: {getattr(done.value, 'message', 'finished')}"
                x = np.array(state.x)
                same = "x" in last and np.array_equal(last["x"], x)
                grad_norm = last["grad_norm"] if same else float(np.linalg.norm(loss_grad(x)[1]))
                metrics = {"loss": float(state.fun), "grad_norm": grad_norm}
                metrics["evaluations"] = count[0]
                yield Progress(
                    torch.as_tensor(x, dtype=x0.dtype, device=x0.device),
                    metrics,
                    converged=grad_norm <= self.tolerance_grad,
                )


class Newton(Algorithm):
    """Damped Newton's method with Armijo backtracking (a reference solver for small ``dim``).

    d = -H(x)^-1 grad f(x) by Cholesky (a ``damping * I`` shift if H is not positive definite),
    step t in {1, 1/2, 1/4, ...} until f(x + t d) <= f(x) + c t grad^T d. Converged when
    ||grad f(x)|| <= ``tol``.
    """

    accepts: ClassVar[frozenset[ProblemKind]] = frozenset({ProblemKind.FINITE_SUM})

    def __init__(
        self, tol: float = 1e-10, c: float = 1e-4, damping: float = 1e-8, max_dim: int = 5000
    ) -> None:
        if not 0 < c < 0.5:
            raise ConfigError(f"c: Armijo constant must be in (0, 0.5), got {c}")
        self.tol, self.c, self.damping, self.max_dim = tol, c, damping, max_dim

    def run(self, problem: FiniteSumProblem, ctx: RunContext) -> Iterator[Progress]:
        if problem.dim > self.max_dim:
            raise ConfigError(
                f"algorithm.max_dim: Newton forms the {problem.dim}x{problem.dim} Hessian; "
                f"dim {problem.dim} exceeds max_dim={self.max_dim}"
            )
        x = problem.initial_point()
        yield Progress(x)
        loss, grad = problem.loss_grad(x)
        while True:
            hessian = problem.hessian(x)
            factor, info = torch.linalg.cholesky_ex(hessian)
            if int(info) != 0:
                eye = torch.eye(problem.dim, dtype=x.dtype, device=x.device)
                factor = torch.linalg.cholesky(hessian + self.damping * eye)
            direction = -torch.cholesky_solve(grad.unsqueeze(1), factor).squeeze(1)
            slope = float(grad @ direction)
            t = 1.0
            while True:
                trial = x + t * direction
                trial_loss = problem.loss(trial)
                if trial_loss <= loss + self.c * t * slope or t < 1e-12:
                    break
                t *= 0.5
            x = trial
            loss, grad = problem.loss_grad(x)
            grad_norm = float(torch.linalg.vector_norm(grad))
            yield Progress(
                x,
                {"loss": loss, "grad_norm": grad_norm, "step_size": t},
                converged=grad_norm <= self.tol,
            )
