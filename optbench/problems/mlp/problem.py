"""A fully connected classifier on a data set scikit-learn ships, as a finite sum.

f(x) = (1/N) sum_i CE(net(x; a_i), y_i) + (l2/2) ||x||^2 over the N training samples, x the
flat parameter vector of ``network.FlatNetwork`` (weights and biases, all regularised). With
``hidden: []`` this is multinomial logistic (softmax) regression: convex, with the reference
optimum f* of ``reference.solve`` and a ``gap`` metric; with hidden layers it is the small
non-convex model of the finite-sum benchmarks (no f*; train/test loss and accuracy).

Oracles in torch (autograd, ``torch.func``), counted as ``FiniteSumProblem`` says, plus the
optional ones of ``optbench.contracts.finite_sum``: per-sample gradients, the target space (the
logits), and dense curvature matrices (closed forms for softmax regression).
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
from optbench.problems.mlp import datasets, reference, softmax
from optbench.problems.mlp.network import ACTIVATIONS, FlatNetwork


class MLPClassifier(FiniteSumProblem):
    """Softmax cross-entropy of a tanh/relu/softplus network; oracles on the run's device.

    Args:
        dataset: a set scikit-learn bundles: ``digits`` (default), ``iris``, ``wine``,
            ``breast_cancer``.
        hidden: hidden layer widths; ``[]`` is softmax regression (convex, with f*).
        activation: ``tanh`` (smooth: the default), ``softplus`` or ``relu``.
        l2: L2 weight on all parameters (>= 0).
        test_fraction: held-out fraction of the stratified split (fixed: ``random_state=0``).
        reference_tol: gradient norm to which f* is computed (softmax regression only).
    """

    n_targets: int

    def __init__(
        self,
        dataset: str = "digits",
        hidden: list[int] | None = None,
        activation: str = "tanh",
        l2: float = 1e-4,
        test_fraction: float = 0.3,
        reference_tol: float = 1e-10,
    ) -> None:
        super().__init__()
        hidden = [32] if hidden is None else list(hidden)
        if any(h < 1 for h in hidden):
            raise ConfigError(f"hidden: widths must be >= 1, got {hidden}")
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation: unknown '{activation}' (known: {', '.join(ACTIVATIONS)})"
            )
        if l2 < 0:
            raise ConfigError(f"l2: must be >= 0, got {l2}")
        if not 0 <= test_fraction < 1:
            raise ConfigError(f"test_fraction: must be in [0, 1), got {test_fraction}")
        self.dataset, self.hidden, self.activation = dataset, hidden, activation
        self.l2, self.test_fraction, self.reference_tol = l2, test_fraction, reference_tol
        self.f_star: float | None = None
        self._facts: dict[str, Any] = {}

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        split = datasets.load(self.dataset, self.test_fraction)
        self.n_classes = self.n_targets = split.n_classes
        self.net = FlatNetwork(
            [split.X_train.shape[1], *self.hidden, split.n_classes], self.activation
        )
        self.n_samples, self.dim = len(split.y_train), self.net.dim
        self.X, self.X_test = ctx.tensor(split.X_train), ctx.tensor(split.X_test)
        self.y = torch.as_tensor(split.y_train, device=ctx.device)
        self.y_test = torch.as_tensor(split.y_test, device=ctx.device)
        self.x0 = self.net.initial_point(ctx.problem_random.child("init").torch, ctx.dtype)
        self.x0 = self.x0.to(ctx.device)
        self.convex = not self.hidden
        if self.convex:  # augmented features for the closed forms of softmax regression
            ones = torch.ones(self.n_samples, 1, dtype=ctx.dtype, device=ctx.device)
            self.X1 = torch.cat([self.X, ones], dim=1)
            self._reference(ctx, split)
        self._facts = {
            "source": f"sklearn.datasets.{datasets.BUNDLED[self.dataset]}",
            "n_samples": self.n_samples,
            "n_test": len(split.y_test),
            "n_features": split.X_train.shape[1],
            "n_classes": split.n_classes,
            "dim": self.dim,
            "convex": self.convex,
            "f_star": self.f_star,
            "f_star_grad_norm": getattr(self, "f_star_grad_norm", None),
        }

    def _reference(self, ctx: RunContext, split: datasets.Split) -> None:
        key = ["v1", self.dataset, self.test_fraction, self.l2, self.reference_tol]
        X1 = np.hstack([split.X_train, np.ones((len(split.X_train), 1))])
        result = ctx.cache.get_or_compute(
            "mlp_fstar",
            key,
            lambda: reference.solve(
                X1, split.y_train, split.n_classes, self.l2, self.reference_tol
            ),
        )
        self.f_star = result["f_star"] if result["converged"] else None
        self.f_star_grad_norm = result["grad_norm"]

    def describe(self) -> dict[str, Any]:
        return dict(self._facts)

    # -- functions of x (uncounted building blocks) ----------------------------------------------
    def _rows(self, batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.X, self.y) if batch is None else (self.X[batch], self.y[batch])

    def _objective(self, batch: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
        X, y = self._rows(batch)
        return lambda x: F.cross_entropy(self.net.forward(x, X), y) + 0.5 * self.l2 * (x @ x)

    def _value_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[float, torch.Tensor]:
        if self.convex:
            X1 = self.X1 if batch is None else self.X1[batch]
            y = self.y if batch is None else self.y[batch]
            return softmax.loss_grad(x, X1, y, self.n_classes, self.l2)
        with torch.enable_grad():  # plain autograd: ~3x faster per call than torch.func here
            w = x.detach().requires_grad_(True)
            value = self._objective(batch)(w)
            (grad,) = torch.autograd.grad(value, w)
        return float(value.detach()), grad

    # -- oracles ---------------------------------------------------------------------------------
    def initial_point(self) -> torch.Tensor:
        return self.x0.clone()

    def loss(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> float:
        self._count("loss", batch)
        with torch.no_grad():
            return float(self._objective(batch)(x))

    def loss_grad(
        self, x: torch.Tensor, batch: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        self._count("grad", batch)
        return self._value_grad(x, batch)

    def hvp(
        self, x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        self._count("hvp", batch)
        grad = torch.func.grad(self._objective(batch))
        return torch.func.jvp(grad, (x.detach(),), (v,))[1]

    def hessian(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """The exact Hessian (closed form for softmax regression; else dim Hessian-vector
        products in chunks)."""
        return self.curvature(x, "hessian", batch)

    def per_sample_grads(self, x: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        self._count("grad", batch)
        return self._data_grads(x, batch) + self.l2 * x.detach()

    def _data_grads(self, x: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        """Gradients of the cross-entropy terms l_i alone (|batch| x dim), uncounted."""
        X, y = self._rows(batch)

        def single(w: torch.Tensor, a: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(self.net.forward(w, a.unsqueeze(0)), label.unsqueeze(0))

        return torch.func.vmap(torch.func.grad(single), in_dims=(None, 0, 0))(x.detach(), X, y)

    # target space: the logits
    def target_pullback(
        self, x: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        self.counters["forward"] += 1
        X, _ = self._rows(batch)
        z, vjp = torch.func.vjp(lambda w: self.net.forward(w, X), x.detach())

        def pullback(v: torch.Tensor) -> torch.Tensor:
            self.counters["vjp"] += 1
            return vjp(v)[0]

        return z.detach(), pullback

    def target_grads(
        self, z: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[float, torch.Tensor]:
        self._count("target_grad", batch)
        _, y = self._rows(batch)
        loss = F.cross_entropy(z, y)
        g = torch.softmax(z, dim=1)
        g[torch.arange(len(y)), y] -= 1.0
        return float(loss), g

    def target_loss(self, z: torch.Tensor, batch: torch.Tensor | None) -> float:
        self.counters["target_loss"] += 1
        return float(F.cross_entropy(z, self._rows(batch)[1]))

    def regularizer(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        return 0.5 * self.l2 * float(x @ x), self.l2 * x

    def curvature(
        self, x: torch.Tensor, kind: str, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Dense curvature (``oracles.CURVATURES``). Softmax regression: closed forms, with
        ``gauss_newton`` equal to the Hessian; hidden layers: ``hessian`` and ``fisher``."""
        offered = CURVATURES if self.convex else ("hessian", "fisher")
        if kind not in offered:
            raise unknown_curvature(kind, offered)
        self._count("hessian", batch)
        x = x.detach()
        if self.convex:
            X1 = self.X1 if batch is None else self.X1[batch]
            y = self.y if batch is None else self.y[batch]
            form = {
                "hessian": softmax.hessian,
                "gauss_newton": softmax.hessian,
                "weighted_gauss_newton": softmax.weighted_gauss_newton,
                "fisher": softmax.empirical_fisher,
            }[kind]
            return form(x, X1, y, self.n_classes, self.l2)
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        if kind == "fisher":
            G = self._data_grads(x, batch)
            return G.T @ G / G.shape[0] + self.l2 * eye
        grad = torch.func.grad(self._objective(batch))
        hvp = torch.func.vmap(lambda v: torch.func.jvp(grad, (x,), (v,))[1])
        return torch.cat([hvp(chunk) for chunk in eye.split(64)]).T

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, solution: torch.Tensor) -> dict[str, float]:
        x = solution.detach()
        loss, grad = self._value_grad(x, None)
        logits = self.net.forward(x, self.X)
        metrics = {
            "train_loss": loss,
            "grad_norm": float(torch.linalg.vector_norm(grad)),
            "train_acc": float((logits.argmax(dim=1) == self.y).double().mean()),
        }
        if len(self.y_test):
            test_logits = self.net.forward(x, self.X_test)
            metrics["test_loss"] = float(F.cross_entropy(test_logits, self.y_test))
            metrics["test_acc"] = float((test_logits.argmax(dim=1) == self.y_test).double().mean())
        if self.f_star is not None:
            metrics["gap"] = loss - self.f_star
        return metrics
