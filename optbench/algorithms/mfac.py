"""M-FAC: the matrix-free inverse-Fisher-vector product over a sliding window of gradients, as a
preconditioned minibatch optimizer. Frantar, Kurtic, Alistarh, "M-FAC: Efficient Matrix-Free
Approximations of Second-Order Information" (NeurIPS 2021, arXiv:2107.03356), the dynamic
algorithm; defaults from the authors' ``main_optim.py`` / ``optim.MFAC`` (IST-DASLab/M-FAC).

With the last m gradients g_1..g_m as the rows of G (m x d; zero rows until the window fills,
as the authors start), the damped empirical Fisher is

  F = lambda I + (1/m) sum_i g_i g_i^T = lambda I + G^T G / m

(the authors' ``HInvSlow``: F^{-1} built from I / lambda by m Sherman-Morrison updates with
the 1/m factor), and each step inserts the new minibatch gradient g_t into the window
(replacing the oldest), then moves x <- x - lr v with v = F^{-1} g_t (momentum mu:
v <- mu v + (1 - mu) F^{-1} g_t, the authors' form). F^{-1} x is evaluated by the Woodbury
identity

  F^{-1} x = (1/lambda) [x - G^T (m lambda I + G G^T)^{-1} G x]

with the m x m Gram matrix G G^T kept up to date in O(d m) per new gradient and refactorised
by Cholesky (O(m^3), as the authors' unpivoted LU of the same matrix), so a product costs
O(d m + m^2). This is the quantity the authors' recursion computes (their coefficient matrix is
the same factorisation written out); we use the library Cholesky instead of their CUDA kernel.
"""

from __future__ import annotations

import torch

from optbench.algorithms.first_order import StochasticGradient
from optbench.contracts.errors import ConfigError


class SlidingWindowFisher:
    """F = damp I + G^T G / m over a ring buffer of the last m gradients; ``solve(x)`` is
    F^{-1} x."""

    def __init__(
        self, m: int, dim: int, damp: float, dtype: torch.dtype, device: torch.device
    ) -> None:
        self.m, self.damp = m, damp
        self.G = torch.zeros(m, dim, dtype=dtype, device=device)
        self.gram = torch.zeros(m, m, dtype=dtype, device=device)
        self.shift = m * damp * torch.eye(m, dtype=dtype, device=device)
        self.oldest = 0
        self.factor = torch.linalg.cholesky(self.shift)

    def update(self, g: torch.Tensor) -> None:
        """Replace the oldest gradient by ``g``: one row of G, one row and column of G G^T."""
        i = self.oldest
        self.G[i] = g
        dots = self.G @ g
        self.gram[i, :] = dots
        self.gram[:, i] = dots
        self.factor = torch.linalg.cholesky(self.shift + self.gram)
        self.oldest = (i + 1) % self.m

    def solve(self, x: torch.Tensor) -> torch.Tensor:
        """F^{-1} x by the Woodbury identity."""
        coefficients = torch.cholesky_solve((self.G @ x).unsqueeze(1), self.factor).squeeze(1)
        return (x - self.G.T @ coefficients) / self.damp


class MFACOptimizer(torch.optim.Optimizer):
    """The M-FAC update on one flat parameter tensor (``torch.optim`` interface, so the
    minibatch loop's schedules apply to its ``lr``)."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        ngrads: int,
        damp: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr})
        (param,) = self.param_groups[0]["params"]
        self.fisher = SlidingWindowFisher(ngrads, param.numel(), damp, param.dtype, param.device)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity = torch.zeros_like(param).reshape(-1)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        group = self.param_groups[0]
        (param,) = group["params"]
        g = param.grad.reshape(-1)
        if self.weight_decay > 0:
            g = g + self.weight_decay * param.reshape(-1)
        self.fisher.update(g)
        direction = self.fisher.solve(g)
        if self.momentum > 0:
            self.velocity.mul_(self.momentum).add_(direction, alpha=1 - self.momentum)
            direction = self.velocity
        param.add_(direction.view_as(param), alpha=-group["lr"])


class MFAC(StochasticGradient):
    """Minibatch M-FAC (Frantar et al. 2021): SGD preconditioned by the inverse of the damped
    empirical Fisher of the last ``ngrads`` minibatch gradients. Authors' defaults: lr 1e-3,
    damp 1e-5, ngrads 1024, momentum 0."""

    def __init__(
        self,
        ngrads: int = 1024,
        damp: float = 1e-5,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        **kwargs: object,
    ) -> None:
        kwargs.setdefault("lr", 1e-3)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if ngrads < 1:
            raise ConfigError(f"ngrads: must be >= 1, got {ngrads}")
        if damp <= 0:
            raise ConfigError(f"damp: must be > 0, got {damp}")
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum: must be in [0, 1), got {momentum}")
        self.ngrads, self.damp, self.momentum, self.weight_decay = (
            ngrads,
            damp,
            momentum,
            weight_decay,
        )

    def make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return MFACOptimizer(
            params, self.lr, self.ngrads, self.damp, self.momentum, self.weight_decay
        )
