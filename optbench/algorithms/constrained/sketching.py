"""Randomized iterative sketching for a square linear system K z = b (Gower and Richtarik,
"Randomized iterative methods for linear systems", SIAM J. Matrix Anal. Appl. 36(4), 2015).

One step with a sketch S (d x q) projects z onto {z : S^T K z = S^T b} along range(K^T S):

    z <- z - K^T S (S^T K K^T S)^+ S^T r,        r = K z - b.

Sketches (``SketchSolver(sketch=...)``):
- ``gaussian``: S a standard Gaussian vector, z <- z - (S^T r)/(S^T K K^T S) K^T S
  (Hong et al. 2023, Section 4, "Gaussian vector sketch");
- ``kaczmarz``: S = e_i, one row of K per step with probability proportional to ||K_i||^2
  (``sampling="norm"``, Strohmer and Vershynin 2009) or uniform (``sampling="uniform"``, as in
  the authors' code): z <- z - (r_i / ||K_i||^2) K_i^T;
- ``block_size = q > 1``: the block variants, S with q Gaussian columns or q sampled rows.

Implementation. For q = 1 a step is two matrix-vector products, and on the small systems of the
CUTEst suite Python's per-call overhead would dominate. Steps are therefore taken in batches of
B with the same random draws and the same iterates in exact arithmetic: with u_i = K^T s_i,
v_i = K u_i and G_ij = s_i^T v_j, the step lengths of B consecutive steps solve the lower
triangular system (diag(||u_i||^2) + tril(G, -1)) alpha = S^T r_0 (forward substitution is the
sequential recursion), z_B = z_0 - sum_i alpha_i u_i and r_k = r_0 - sum_{i <= k} alpha_i v_i,
from which the first k meeting the stopping rule is found. After each batch the residual is
recomputed as K z - b. Batches grow from 8 to ``max_batch`` (4000 / d, at most 128) and are not
used when d is large (B = 1: the plain loop). The solver runs with one BLAS thread (threadpoolctl):
its products are small, and multi-threaded BLAS on them is slower on a shared machine.
``tests/test_nlp_algorithms.py`` checks the batched iterates against the plain loop on the same
random stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

Sketch = Literal["gaussian", "kaczmarz"]
Sampling = Literal["norm", "uniform"]

_THREADPOOLS = ThreadpoolController()


@dataclass
class SketchResult:
    z: np.ndarray
    residual: np.ndarray  # K z - b
    iterations: int


class SketchSolver:
    """Randomized iterative sketching; random numbers from ``rng`` (the run's generator)."""

    def __init__(
        self,
        rng: np.random.Generator,
        sketch: Sketch = "gaussian",
        sampling: Sampling = "norm",
        block_size: int = 1,
        batched: bool = True,
    ) -> None:
        self.rng, self.sketch, self.sampling = rng, sketch, sampling
        self.block_size, self.batched = block_size, batched

    # -- public ----------------------------------------------------------------------------------
    def solve(
        self, K: Any, b: np.ndarray, z: np.ndarray, target: float, max_iterations: int
    ) -> SketchResult:
        """Iterate from ``z`` until ||K z - b||_2 <= target or ``max_iterations`` steps."""
        with _THREADPOOLS.limit(limits=1, user_api="blas"):
            return self._solve(K, b, z, target, max_iterations)

    def _solve(
        self, K: Any, b: np.ndarray, z: np.ndarray, target: float, max_iterations: int
    ) -> SketchResult:
        z = np.array(z, dtype=float)
        r = np.asarray(K @ z).ravel() - b
        if np.linalg.norm(r) <= target or max_iterations <= 0:
            return SketchResult(z, r, 0)
        kt = K.T.tocsr() if sp.issparse(K) else K.T
        probabilities = self._row_probabilities(K) if self.sketch == "kaczmarz" else None
        if self.block_size > 1:
            return self._block_loop(K, kt, b, z, r, target, max_iterations, probabilities)
        d = len(b)
        max_batch = int(np.clip(4000 // max(d, 1), 1, 128)) if self.batched else 1
        if max_batch == 1:
            return self._plain_loop(K, kt, b, z, r, target, max_iterations, probabilities)
        return self._batched_loop(K, kt, b, z, r, target, max_iterations, probabilities, max_batch)

    # -- sketches --------------------------------------------------------------------------------
    def _row_probabilities(self, K: Any) -> np.ndarray:
        if sp.issparse(K):
            norms = np.asarray(K.multiply(K).sum(axis=1)).ravel()
        else:
            norms = np.einsum("ij,ij->i", K, K)
        weights = (norms > 0).astype(float) if self.sampling == "uniform" else norms
        total = weights.sum()
        if total <= 0:
            raise ValueError("the system matrix is zero")
        return weights / total

    def _draw(self, count: int, d: int, probabilities: np.ndarray | None) -> np.ndarray:
        """``count`` sketches: Gaussian rows (count x d) or row indices (count,)."""
        if probabilities is None:
            return self.rng.standard_normal((count, d))
        return self.rng.choice(d, size=count, p=probabilities)

    @staticmethod
    def _rows(K: Any, kt: Any, draws: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
        """u_i = K^T s_i for each draw, as rows."""
        if probabilities is None:
            return np.asarray(kt @ draws.T).T if sp.issparse(K) else draws @ K
        rows = K[draws]
        return rows.toarray() if sp.issparse(rows) else np.asarray(rows)

    # -- q = 1: plain loop -----------------------------------------------------------------------
    def _plain_loop(
        self,
        K: Any,
        kt: Any,
        b: np.ndarray,
        z: np.ndarray,
        r: np.ndarray,
        target: float,
        max_iterations: int,
        probabilities: np.ndarray | None,
    ) -> SketchResult:
        d = len(b)
        gaussian = probabilities is None
        for iteration in range(1, max_iterations + 1):
            draw = self._draw(1, d, probabilities)
            u = self._rows(K, kt, draw, probabilities)[0]
            scale = u @ u
            if scale > 0:
                projected = draw[0] @ r if gaussian else r[draw[0]]
                alpha = projected / scale
                z -= alpha * u
                r -= alpha * np.asarray(K @ u).ravel()
            if np.linalg.norm(r) <= target:
                r = np.asarray(K @ z).ravel() - b
                if np.linalg.norm(r) <= target:
                    return SketchResult(z, r, iteration)
        return SketchResult(z, np.asarray(K @ z).ravel() - b, max_iterations)

    # -- q = 1: batched, same iterates -----------------------------------------------------------
    def _batched_loop(
        self,
        K: Any,
        kt: Any,
        b: np.ndarray,
        z: np.ndarray,
        r: np.ndarray,
        target: float,
        max_iterations: int,
        probabilities: np.ndarray | None,
        max_batch: int,
    ) -> SketchResult:
        d = len(b)
        done = 0
        batch = 8
        while done < max_iterations:
            count = min(batch, max_batch, max_iterations - done)
            draws = self._draw(count, d, probabilities)
            U = self._rows(K, kt, draws, probabilities)
            V = np.asarray(K @ U.T).T if sp.issparse(K) else U @ K.T
            if probabilities is None:
                projected = draws @ r
                G = draws @ V.T
            else:
                projected = r[draws]
                G = V[:, draws].T
            scales = np.einsum("ij,ij->i", U, U)
            lower = np.tril(G, -1)
            zero = scales <= 0
            lower[zero] = 0.0
            np.fill_diagonal(lower, np.where(zero, 1.0, scales))
            alpha = sla.solve_triangular(lower, np.where(zero, 0.0, projected), lower=True)
            paths = r[None, :] - np.cumsum(alpha[:, None] * V, axis=0)
            norms = np.sqrt(np.einsum("ij,ij->i", paths, paths))
            hit = np.flatnonzero(norms <= target)
            used = int(hit[0]) + 1 if hit.size else count
            z -= alpha[:used] @ U[:used]
            r = np.asarray(K @ z).ravel() - b
            done += used
            if hit.size and np.linalg.norm(r) <= target:
                return SketchResult(z, r, done)
            batch *= 2
        return SketchResult(z, r, done)

    # -- q > 1: block sketches -------------------------------------------------------------------
    def _block_loop(
        self,
        K: Any,
        kt: Any,
        b: np.ndarray,
        z: np.ndarray,
        r: np.ndarray,
        target: float,
        max_iterations: int,
        probabilities: np.ndarray | None,
    ) -> SketchResult:
        d = len(b)
        q = min(self.block_size, d)
        for iteration in range(1, max_iterations + 1):
            if probabilities is None:
                draws = self._draw(q, d, None)
                projected = draws @ r
            else:
                draws = self.rng.choice(d, size=q, replace=False, p=probabilities)
                projected = r[draws]
            W = self._rows(K, kt, draws, probabilities)  # q x d, rows K^T s_j
            step = np.linalg.lstsq(W @ W.T, projected, rcond=None)[0]
            z -= step @ W
            r = np.asarray(K @ z).ravel() - b
            if np.linalg.norm(r) <= target:
                return SketchResult(z, r, iteration)
        return SketchResult(z, r, max_iterations)
