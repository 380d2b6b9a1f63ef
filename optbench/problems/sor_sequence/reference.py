"""Plain implementations of the solvers, straight from their definitions.

They are the references the compiled kernels are tested against (iteration counts must agree),
the baseline of the kernel benchmark, and the fallback when no C compiler is available.

- ``plain_sor``: ``M = D/omega + tril(A, -1)``; ``x <- x + M^{-1} r`` with ``r = b - A x``
  recomputed by a sparse product and ``M^{-1} r`` by scipy's sparse triangular solve; stop when
  ``||r|| / ||r_0|| < tol``, at most ``maxiter`` iterations (the definition used by Khodak et
  al. 2024, sec. 2).
- ``plain_pcg``: scipy's ``cg`` with the SSOR preconditioner applied by two sparse triangular
  solves, ``M^{-1} = omega (2 - omega) (D + omega L)^{-1} D (D + omega U)^{-1}`` (backward
  sweep first, as MATLAB's ``pcg`` with Khodak et al.'s factors) or the mirrored one
  ``omega (2 - omega) (D + omega U)^{-1} D (D + omega L)^{-1}``; iterations counted by its
  callback.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def plain_sor(
    A: sp.spmatrix, b: np.ndarray, x: np.ndarray, omega: float, tol: float, maxiter: int
) -> tuple[int, float]:
    """SOR iterations to reach ``||b - A x_k|| / ||b - A x_0|| < tol`` (``maxiter`` if never);
    ``x`` is overwritten with the last iterate. Returns ``(iterations, relative residual)``."""
    A = sp.csr_matrix(A)
    M = (sp.diags(A.diagonal() / omega) + sp.tril(A, -1)).tocsr()
    r = b - A @ x
    r0 = np.linalg.norm(r)
    if r0 == 0:
        return 0, 0.0
    rel = 1.0
    for k in range(1, maxiter + 1):
        x += spla.spsolve_triangular(M, r, lower=True)
        r = b - A @ x
        rel = float(np.linalg.norm(r) / r0)
        if rel < tol:
            return k, rel
    return maxiter, rel


def ssor_operator(
    A: sp.spmatrix, omega: float, order: str = "backward_forward"
) -> spla.LinearOperator:
    """``M^{-1}`` of the SSOR preconditioner of symmetric ``A`` as a LinearOperator, the upper
    triangular solve first (``backward_forward``) or the lower one first."""
    A = sp.csr_matrix(A)
    d = A.diagonal()
    lower = (sp.diags(d) + omega * sp.tril(A, -1)).tocsr()
    upper = (sp.diags(d) + omega * sp.triu(A, 1)).tocsr()

    def apply(r: np.ndarray) -> np.ndarray:
        if order == "backward_forward":
            y = spla.spsolve_triangular(upper, np.ravel(r), lower=False)
            return omega * (2 - omega) * spla.spsolve_triangular(lower, d * y, lower=True)
        y = spla.spsolve_triangular(lower, np.ravel(r), lower=True)
        return omega * (2 - omega) * spla.spsolve_triangular(upper, d * y, lower=False)

    return spla.LinearOperator(A.shape, matvec=apply, dtype=np.float64)


def plain_pcg(
    A: sp.spmatrix,
    b: np.ndarray,
    x: np.ndarray,
    omega: float | None,
    tol: float,
    maxiter: int,
    order: str = "backward_forward",
) -> tuple[int, float]:
    """scipy CG (SSOR-preconditioned unless ``omega`` is None) from ``x`` to
    ``||b - A x|| <= tol ||b||``. Returns ``(iterations, relative residual)``; ``x`` is
    overwritten with the solution."""
    A = sp.csr_matrix(A)
    count = [0]

    def callback(_: np.ndarray) -> None:
        count[0] += 1

    M = None if omega is None else ssor_operator(A, omega, order)
    sol, _ = spla.cg(A, b, x0=x.copy(), rtol=tol, atol=0.0, maxiter=maxiter, M=M, callback=callback)
    x[:] = sol
    nb = np.linalg.norm(b)
    return count[0], float(np.linalg.norm(b - A @ sol) / nb) if nb > 0 else 0.0
