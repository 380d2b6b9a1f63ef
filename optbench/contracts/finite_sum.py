"""Kind ``finite_sum``: an empirical risk ``f(x) = (1/N) sum_i f_i(x) + r(x)``."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch

from optbench.contracts.problem import Problem, ProblemKind


class FiniteSumProblem(Problem):
    """``f(x) = (1/N) sum_i f_i(x) + r(x)`` over ``N = n_samples`` samples, ``x`` in R^dim.

    ``batch`` arguments are index tensors (on ``ctx.device``) selecting the samples of a
    minibatch; ``None`` means the full sum. Oracles count calls under ``loss``, ``grad``, ``hvp``
    and ``hessian``, and the samples they touch under ``samples`` (so ``samples / N`` is the
    number of data passes an algorithm used).
    """

    kind: ClassVar[ProblemKind] = ProblemKind.FINITE_SUM
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
