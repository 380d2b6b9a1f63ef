"""Synthetic ridge least squares with a closed-form optimum (kind ``finite_sum``).

f(x) = (1/2N) ||A x - b||^2 + (l2/2) ||x||^2 with A (N x dim) Gaussian whose columns are scaled
to condition number ``condition``, b = A x_true + noise * N(0, I). The minimiser solves
(A^T A / N + l2 I) x* = A^T b / N; ``evaluate`` reports the gap f(x) - f(x*) and
||x - x*||. The instance is drawn from the run's seeded generator. Cheap and exact: the problem
the platform's own tests and benchmarks use.
"""

from __future__ import annotations

from typing import Any

import torch

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError
from optbench.contracts.finite_sum import FiniteSumProblem


class LeastSquares(FiniteSumProblem):
    headline = ("gap", "min")

    def __init__(
        self,
        n_samples: int = 200,
        dim: int = 10,
        condition: float = 10.0,
        noise: float = 0.1,
        l2: float = 0.0,
    ) -> None:
        super().__init__()
        if n_samples < 1 or dim < 1:
            raise ConfigError(f"n_samples, dim: must be >= 1, got {n_samples}, {dim}")
        if condition < 1:
            raise ConfigError(f"condition: must be >= 1, got {condition}")
        self.n_samples, self.dim = n_samples, dim
        self.condition, self.noise, self.l2 = condition, noise, l2

    def setup(self, ctx: RunContext) -> None:
        g = torch.Generator().manual_seed(ctx.problem_random.integer_seed())
        scales = torch.logspace(0, -torch.log10(torch.tensor(self.condition)).item(), self.dim)
        A = torch.randn(self.n_samples, self.dim, generator=g, dtype=torch.float64) * scales
        x_true = torch.randn(self.dim, generator=g, dtype=torch.float64)
        b = A @ x_true + self.noise * torch.randn(self.n_samples, generator=g, dtype=torch.float64)
        normal = A.T @ A / self.n_samples + self.l2 * torch.eye(self.dim, dtype=torch.float64)
        x_star = torch.linalg.solve(normal, A.T @ b / self.n_samples)
        self.A, self.b = ctx.tensor(A), ctx.tensor(b)
        self.x_star = ctx.tensor(x_star)
        self.f_star = self._loss(self.x_star, self.A, self.b)

    def _loss(self, x: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> float:
        r = A @ x - b
        return float(0.5 * (r @ r) / len(b) + 0.5 * self.l2 * (x @ x))

    def _rows(self, batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.A, self.b) if batch is None else (self.A[batch], self.b[batch])

    def initial_point(self) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=self.A.dtype, device=self.A.device)

    def loss(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> float:
        self._count("loss", batch)
        return self._loss(x, *self._rows(batch))

    def loss_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        self._count("grad", batch)
        A, b = self._rows(batch)
        r = A @ x - b
        return float(0.5 * (r @ r) / len(b) + 0.5 * self.l2 * (x @ x)), A.T @ r / len(
            b
        ) + self.l2 * x

    def hvp(
        self, x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._count("hvp", batch)
        A, _ = self._rows(batch)
        return A.T @ (A @ v) / len(A) + self.l2 * v

    @torch.no_grad()
    def evaluate(self, solution: torch.Tensor) -> dict[str, float]:
        loss = self._loss(solution, self.A, self.b)
        return {
            "loss": loss,
            "gap": loss - self.f_star,
            "dist": float(torch.linalg.vector_norm(solution - self.x_star)),
        }

    def describe(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "dim": self.dim, "f_star": self.f_star}
