"""Kind ``finite_sum``: an empirical risk ``f(x) = (1/N) sum_i f_i(x) + r(x)``.

``FiniteSumProblem`` is the oracle interface every finite sum offers. Optional oracles beyond
it (a problem offers one by implementing its methods; an algorithm that needs one checks with
``require``, a clear ``ConfigError`` naming what is missing otherwise; every call is counted by
the problem like the basic oracles):
- ``PerSampleGradients``: the gradients of the summands f_i = l_i + r of a batch, one row per
  sample (their mean is the batch gradient). Counted as one ``grad`` call over the batch.
- ``TargetSpace``: f(x) = (1/N) sum_i l_i(t_i(x)) + r(x) with targets t_i(x) in R^k (a model's
  outputs: logits); the composite structure target-based surrogates use (Lavington et al.,
  ICML 2023). ``target_grads`` is the expensive oracle (``target_grad``, counts samples);
  ``target_pullback`` (targets and the vector-Jacobian product v -> J(x)^T v, counted as
  ``forward`` and ``vjp``) and ``target_loss`` (``target_loss``) are the cheap ones;
  ``regularizer`` is r(x) and its gradient (uncounted: it touches no data).
- ``Curvature``: dense curvature matrices at x (dim x dim) on the full sum or a batch:
  ``hessian`` (exact), ``gauss_newton``, ``weighted_gauss_newton`` (the log-sum-exp
  approximation that drops the -p p^T term, Semenov et al. 2025), ``fisher`` (empirical Fisher
  (1/n) sum_i grad l_i grad l_i^T), each plus the regulariser's Hessian. Counted as ``hessian``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

import torch

from optbench.contracts.errors import ConfigError
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


# -- optional oracles ------------------------------------------------------------------------
CURVATURES = ("hessian", "gauss_newton", "weighted_gauss_newton", "fisher")


@runtime_checkable
class PerSampleGradients(Protocol):
    def per_sample_grads(self, x: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        """Gradients of f_i = l_i + r for the samples of ``batch`` (|batch| x dim)."""
        ...


@runtime_checkable
class TargetSpace(Protocol):
    #: the dimension k of one sample's target.
    n_targets: int

    def target_pullback(
        self, x: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """Targets z = t_B(x) (|batch| x k) and v -> sum_i J_i(x)^T v_i (v: |batch| x k)."""
        ...

    def target_grads(
        self, z: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[float, torch.Tensor]:
        """The batch's mean loss at targets z and the per-sample gradients dl_i/dz_i."""
        ...

    def target_loss(self, z: torch.Tensor, batch: torch.Tensor | None) -> float:
        """The batch's mean loss (1/|B|) sum_i l_i(z_i) at targets z."""
        ...

    def regularizer(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """r(x) and its gradient."""
        ...


@runtime_checkable
class Curvature(Protocol):
    def curvature(
        self, x: torch.Tensor, kind: str, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The ``kind`` curvature matrix (one of ``CURVATURES``) of the sum or a batch at x."""
        ...


def require(problem: object, oracle: type, algorithm: str, what: str) -> None:
    """Raise ``ConfigError`` unless ``problem`` offers the optional ``oracle`` protocol."""
    if not isinstance(problem, oracle):
        raise ConfigError(
            f"algorithm '{algorithm}' needs {what} ({oracle.__name__}), which problem "
            f"'{type(problem).__name__}' does not offer"
        )


def unknown_curvature(kind: str, offered: tuple[str, ...]) -> ConfigError:
    return ConfigError(f"curvature: '{kind}' is not offered here (offered: {', '.join(offered)})")
