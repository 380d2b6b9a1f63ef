"""Linear algebra shared by the Newton-KKT methods for ``min f(x) s.t. c(x) = 0``.

Matrices arrive dense (``np.ndarray``) or SciPy sparse. Up to ``DENSE_LIMIT`` rows everything is
made dense (LAPACK is fastest there); above it, sparse paths are used: ARPACK for extreme
eigenvalues, SuperLU for direct solves.

- ``modify_hessian``: B = H + t I with t = xi_B + ||H|| when the reduced Hessian Z^T H Z (Z a
  basis of null(J)) has an eigenvalue below ``tol`` (Hong et al. 2023, Section 5; Byrd, Curtis
  and Nocedal 2008 use the same test), else t = 0.
- ``kkt_matrix``: K = [[B, J^T], [J, 0]], the Newton-KKT matrix of the SQP step
  K (dx, dlam) = -(grad_x L, c).
- Norms of matrices are Frobenius norms (cheap for sparse matrices, an upper bound on the
  spectral norm): the authors' code computes Julia's ``norm(A)``, which is Frobenius.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

#: matrices with at most this many rows are handled dense.
DENSE_LIMIT = 2000


def dense(matrix: Any) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix, dtype=float)


def compact(matrix: Any) -> Any:
    """Dense up to ``DENSE_LIMIT`` rows and columns, CSR above."""
    if max(matrix.shape) <= DENSE_LIMIT:
        return dense(matrix)
    return sp.csr_matrix(matrix)


def frobenius(matrix: Any) -> float:
    if sp.issparse(matrix):
        return float(spla.norm(matrix, "fro"))
    return float(np.linalg.norm(matrix))


def matvec(matrix: Any, v: np.ndarray) -> np.ndarray:
    return np.asarray(matrix @ v).ravel()


def rmatvec(matrix: Any, v: np.ndarray) -> np.ndarray:
    """``matrix^T v``."""
    return np.asarray(matrix.T @ v).ravel()


def min_eig_sym(matrix: Any) -> float:
    """The smallest eigenvalue of a symmetric matrix: dense (LAPACK) up to ``DENSE_LIMIT`` rows;
    above it only for a diagonal sparse matrix (else a ``ValueError``: use
    ``positive_definite``, which needs no eigenvalue)."""
    n = matrix.shape[0]
    if n == 0:
        return np.inf
    if not sp.issparse(matrix) or n <= DENSE_LIMIT:
        return float(sla.eigvalsh(dense(matrix), subset_by_index=[0, 0])[0])
    coo = matrix.tocoo()
    if np.all(coo.row == coo.col):  # diagonal
        diagonal = np.zeros(n)
        np.add.at(diagonal, coo.row, coo.data)
        return float(diagonal.min())
    raise ValueError(f"the smallest eigenvalue of a {n} x {n} sparse matrix is not computed")


def positive_definite(matrix: Any, shift: float = 0.0) -> bool:
    """Is ``matrix - shift I`` positive definite? Dense: a Cholesky attempt. Large sparse: the
    inertia from SuperLU's symmetric-mode factorisation with diagonal pivots only (the signs
    of the pivots, by Sylvester's law of inertia)."""
    n = matrix.shape[0]
    if not sp.issparse(matrix) or n <= DENSE_LIMIT:
        try:
            np.linalg.cholesky(dense(matrix) - shift * np.eye(n))
        except np.linalg.LinAlgError:
            return False
        return True
    shifted = sp.csc_matrix(matrix - shift * sp.identity(n))
    try:
        factor = spla.splu(
            shifted,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
    except RuntimeError:  # exactly singular
        return False
    if not np.array_equal(factor.perm_r, factor.perm_c):  # off-diagonal pivots: no inertia
        raise ValueError("the symmetric factorisation pivoted off the diagonal")
    return bool(np.all(factor.U.diagonal() > 0))


def shift_to_positive_definite(matrix: Any, xi: float, floor: float) -> tuple[Any, float]:
    """``(A + tau I, tau)`` with the smallest tau in {0, xi, 2 xi, 4 xi, ...} making
    ``A + tau I - floor I`` positive definite (Nocedal and Wright 2006, Algorithm 3.3)."""
    n = matrix.shape[0]
    eye = sp.identity(n, format="csr") if sp.issparse(matrix) else np.eye(n)
    tau = 0.0
    while not positive_definite(matrix + tau * eye, floor):
        tau = xi if tau == 0.0 else 2 * tau
    return (matrix + tau * eye if tau else matrix), tau


def min_eig_gram(jac: Any) -> float:
    """lambda_min(J J^T): 0 when J has more rows than columns."""
    m, n = jac.shape
    if m > n:
        return 0.0
    if not sp.issparse(jac) or m <= DENSE_LIMIT:
        singular = sla.svdvals(dense(jac))
        return float(singular.min() ** 2) if singular.size else np.inf
    gram = sp.csc_matrix(jac @ jac.T)
    try:
        value = spla.eigsh(gram, k=1, sigma=0.0, which="LM", return_eigenvectors=False)[0]
    except RuntimeError:  # exactly singular: the shift-invert factorisation fails
        return 0.0
    return float(value)


def null_space_basis(jac: Any) -> np.ndarray:
    """An orthonormal basis Z (n x (n - m)) of null(J), from a full QR of J^T."""
    m, n = jac.shape
    q, _ = np.linalg.qr(dense(jac).T, mode="complete")
    return q[:, m:n]


def reduced_min_eig(hessian: Any, jac: Any, tol: float = 0.0) -> float:
    """lambda_min(Z^T H Z) for Z a basis of null(J); +inf when null(J) = {0}.

    For a large sparse H with H - tol I positive definite, ``tol`` is returned (a lower bound:
    then Z^T H Z - tol I is positive definite too); otherwise the null-space basis is formed
    densely.
    """
    m, n = jac.shape
    if m >= n:
        return np.inf
    if sp.issparse(hessian) and n > DENSE_LIMIT and positive_definite(hessian, tol):
        return tol
    basis = null_space_basis(jac)
    reduced = basis.T @ (dense(hessian) @ basis)
    return float(sla.eigvalsh((reduced + reduced.T) / 2, subset_by_index=[0, 0])[0])


def modify_hessian(
    hessian: Any, jac: Any, xi: float, tol: float = 1e-6
) -> tuple[Any, float, float]:
    """``(B, t, lambda_min(Z^T H Z))``: B = H + t I with t = xi + ||H||_F if the reduced
    Hessian's smallest eigenvalue is below ``tol``, else t = 0."""
    reduced = reduced_min_eig(hessian, jac, tol)
    if reduced >= tol:
        return hessian, 0.0, reduced
    shift = xi + frobenius(hessian)
    n = hessian.shape[0]
    if sp.issparse(hessian):
        return sp.csr_matrix(hessian + shift * sp.identity(n)), shift, reduced
    return np.asarray(hessian) + shift * np.eye(n), shift, reduced


def kkt_matrix(b_matrix: Any, jac: Any) -> Any:
    """K = [[B, J^T], [J, 0]]: dense up to ``DENSE_LIMIT`` rows, CSR above."""
    m, n = jac.shape
    if n + m <= DENSE_LIMIT:
        K = np.zeros((n + m, n + m))
        K[:n, :n] = dense(b_matrix)
        jd = dense(jac)
        K[n:, :n] = jd
        K[:n, n:] = jd.T
        return K
    return sp.csr_matrix(sp.bmat([[sp.csr_matrix(b_matrix), sp.csr_matrix(jac).T], [jac, None]]))


def direct_solve(K: Any, rhs: np.ndarray) -> np.ndarray:
    """``K^-1 rhs`` by LU (LAPACK dense, SuperLU sparse)."""
    if sp.issparse(K):
        return np.asarray(spla.spsolve(sp.csc_matrix(K), rhs)).ravel()
    return sla.solve(K, rhs)


class JacobianFacts:
    """lambda_min(J J^T) of the last Jacobian object seen: a problem with linear constraints
    returns the same (immutable) J every time, and its spectrum is computed once."""

    def __init__(self) -> None:
        self._jac: Any = None
        self._value = 0.0

    def min_eig_gram(self, jac: Any) -> float:
        if jac is not self._jac:
            self._jac, self._value = jac, min_eig_gram(jac)
        return self._value
