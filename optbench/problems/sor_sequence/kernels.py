"""Compiled kernels for the hot loops: natural-order SOR and (SSOR-preconditioned) CG.

The matrix is held split as ``SplitCSR``: its diagonal and its strictly lower and strictly upper
parts in CSR with 32-bit indices. A whole solve (every iteration) runs in one C call, so a
10 x 10 grid costs microseconds, not Python-loop milliseconds.

SOR (Young 1950; Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed., sec. 4.1) with
``M = D/omega + L`` iterates ``x <- x + M^{-1} r``. The kernel runs it in residual form: one
forward triangular sweep ``delta = M^{-1} r`` (updating ``x``), then the new residual from the
identity ``b - A(x + delta) = N delta`` with ``N = M - A = (1/omega - 1) D - U``, which reads
only the strictly upper part. Per iteration the matrix is read once (not 1.5 or 2 times as
with a triangular solve plus a full residual product). The stop test is the definition's,
``||b - A x_k|| / ||b - A x_0|| < tol``: whenever the recurred residual is within a relative
1e-6 of passing, the true residual ``b - A x_k`` is computed and decides (and replaces the
recurred one), so the count is that of the plain definition up to floating-point ties.

PCG (Hestenes-Stiefel; Saad, alg. 9.1) stops when ``||b - A x_k|| <= tol ||b||`` (MATLAB
``pcg``'s rule, used by Khodak et al.), again confirmed on the true residual. The SSOR
preconditioner is ``M = (D + omega U) D^{-1} (D + omega L) / (omega (2 - omega))`` (Saad
sec. 10.2; A symmetric, U = L^T), applied backward sweep first as MATLAB's ``pcg`` does with the
authors' factors, or the mirrored ``(D + omega L) D^{-1} (D + omega U) / (omega (2 - omega))``
(forward sweep first, ``order="forward_backward"``);
``omega = 0`` means no preconditioner (plain CG).

The C source below is compiled once per machine with the system C compiler (``cc``, or
``$CC``) once per machine through the run context's cache (namespace ``sor_kernels``, keyed by
the source's hash) and loaded with ctypes.
IEEE semantics are kept (``-O3 -ffp-contract=off``, no fast-math), so results are the same on
every x86-64 machine. Without a compiler the plain scipy implementations in ``reference`` are
used instead (same counts, much slower) and a warning says so.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from optbench.contracts.context import Cache, MemoryCache

log = logging.getLogger("optbench")

#: the order of SSOR's two triangular sweeps when applying ``M^{-1}``:
#: ``backward_forward`` ((D + omega U)^{-1} first; MATLAB ``pcg(A, b, tol, maxit, M1, M2)`` with
#: Khodak et al.'s factors M1 = (D + omega L)' D^{-1}, M2 = (D + omega L) / (omega (2 - omega)))
#: or ``forward_backward``: the mirrored M = (D + omega L) D^{-1} (D + omega U) / (omega (2 -
#: omega)) (Saad's usual statement).
SweepOrder = Literal["backward_forward", "forward_backward"]
SWEEP_ORDERS = ("backward_forward", "forward_backward")

SOURCE = r"""
#include <math.h>
#include <string.h>

typedef struct {
    int n;
    const int *lp, *li; const double *lx;   /* strictly lower, CSR */
    const int *up, *ui; const double *ux;   /* strictly upper, CSR */
    const double *d, *dinv;                 /* diagonal and its reciprocal */
} split_csr;

static void residual(const split_csr *A, const double *b, const double *x, double *r) {
    for (int i = 0; i < A->n; i++) {
        double s = b[i] - A->d[i] * x[i];
        for (int k = A->lp[i]; k < A->lp[i + 1]; k++) s -= A->lx[k] * x[A->li[k]];
        for (int k = A->up[i]; k < A->up[i + 1]; k++) s -= A->ux[k] * x[A->ui[k]];
        r[i] = s;
    }
}

static void matvec(const split_csr *A, const double *x, double *y) {
    for (int i = 0; i < A->n; i++) {
        double s = A->d[i] * x[i];
        for (int k = A->lp[i]; k < A->lp[i + 1]; k++) s += A->lx[k] * x[A->li[k]];
        for (int k = A->up[i]; k < A->up[i + 1]; k++) s += A->ux[k] * x[A->ui[k]];
        y[i] = s;
    }
}

static double norm2(int n, const double *v) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += v[i] * v[i];
    return sqrt(s);
}

/* Natural-order SOR from x (updated in place). Returns the iteration count (maxiter when the
   test never passed); *relres gets the final ||b - A x|| / ||b - A x0||. */
int sor_solve(const split_csr *A, const double *b, double *x, double omega, double tol,
              int maxiter, double *r, double *delta, double *relres) {
    const int n = A->n;
    const double shift = 1.0 / omega - 1.0;
    residual(A, b, x, r);
    const double r0 = norm2(n, r);
    *relres = 0.0;
    if (r0 == 0.0) return 0;
    for (int it = 1; it <= maxiter; it++) {
        for (int i = 0; i < n; i++) {                     /* delta = M^{-1} r, x += delta */
            double s = r[i];
            for (int k = A->lp[i]; k < A->lp[i + 1]; k++) s -= A->lx[k] * delta[A->li[k]];
            double di = s * (omega * A->dinv[i]);  /* off the dependency chain */
            delta[i] = di;
            x[i] += di;
        }
        double ss = 0.0;
        for (int i = 0; i < n; i++) {                     /* r = ((1/omega - 1) D - U) delta */
            double s = shift * A->d[i] * delta[i];
            for (int k = A->up[i]; k < A->up[i + 1]; k++) s -= A->ux[k] * delta[A->ui[k]];
            r[i] = s;
            ss += s * s;
        }
        double rel = sqrt(ss) / r0;
        if (rel < tol * (1.0 + 1e-6)) {                   /* near or past the test: decide on */
            residual(A, b, x, r);                         /* the true residual */
            rel = norm2(n, r) / r0;
            if (rel < tol) { *relres = rel; return it; }
        }
        *relres = rel;
    }
    return maxiter;
}

/* z = M^{-1} r for SSOR. backward_first (MATLAB pcg with M1 = (D + omega U) D^{-1} and
   M2 = (D + omega L) / (omega (2 - omega)), as Khodak et al.'s ssor_pcg.m):
   omega (2 - omega) (D + omega L)^{-1} D (D + omega U)^{-1} r; otherwise the mirrored one
   omega (2 - omega) (D + omega U)^{-1} D (D + omega L)^{-1} r. */
static void ssor_apply(const split_csr *A, double omega, int backward_first, const double *r,
                       double *z) {
    const int n = A->n;
    if (backward_first) {
        for (int i = n - 1; i >= 0; i--) {
            double s = r[i];
            for (int k = A->up[i]; k < A->up[i + 1]; k++) s -= omega * A->ux[k] * z[A->ui[k]];
            z[i] = s * A->dinv[i];
        }
        for (int i = 0; i < n; i++) {
            double s = A->d[i] * z[i];
            for (int k = A->lp[i]; k < A->lp[i + 1]; k++) s -= omega * A->lx[k] * z[A->li[k]];
            z[i] = s * A->dinv[i];
        }
    } else {
        for (int i = 0; i < n; i++) {
            double s = r[i];
            for (int k = A->lp[i]; k < A->lp[i + 1]; k++) s -= omega * A->lx[k] * z[A->li[k]];
            z[i] = s * A->dinv[i];
        }
        for (int i = n - 1; i >= 0; i--) {
            double s = A->d[i] * z[i];
            for (int k = A->up[i]; k < A->up[i + 1]; k++) s -= omega * A->ux[k] * z[A->ui[k]];
            z[i] = s * A->dinv[i];
        }
    }
    const double scale = omega * (2.0 - omega);
    for (int i = 0; i < n; i++) z[i] *= scale;
}

/* (SSOR-preconditioned) CG from x (updated in place); omega = 0: no preconditioner.
   Stops when ||b - A x|| <= tol ||b||. work: 4 n doubles (r, z, p, q). */
int pcg_solve(const split_csr *A, const double *b, double *x, double omega,
              int backward_first, double tol, int maxiter, double *work, double *relres) {
    const int n = A->n;
    double *r = work, *z = work + n, *p = work + 2 * n, *q = work + 3 * n;
    const double nb = norm2(n, b);
    residual(A, b, x, r);
    double rn = norm2(n, r);
    if (nb == 0.0) { *relres = 0.0; memset(x, 0, sizeof(double) * n); return 0; }
    *relres = rn / nb;
    if (rn <= tol * nb) return 0;
    double rho_old = 1.0;
    for (int it = 1; it <= maxiter; it++) {
        if (omega > 0.0) ssor_apply(A, omega, backward_first, r, z);
        else memcpy(z, r, sizeof(double) * n);
        double rho = 0.0;
        for (int i = 0; i < n; i++) rho += r[i] * z[i];
        if (it == 1) memcpy(p, z, sizeof(double) * n);
        else {
            const double beta = rho / rho_old;
            for (int i = 0; i < n; i++) p[i] = z[i] + beta * p[i];
        }
        rho_old = rho;
        matvec(A, p, q);
        double pq = 0.0;
        for (int i = 0; i < n; i++) pq += p[i] * q[i];
        const double alpha = rho / pq;
        double ss = 0.0;
        for (int i = 0; i < n; i++) {
            x[i] += alpha * p[i];
            r[i] -= alpha * q[i];
            ss += r[i] * r[i];
        }
        rn = sqrt(ss);
        if (rn <= tol * nb * (1.0 + 1e-6)) {
            residual(A, b, x, r);
            rn = norm2(n, r);
            if (rn <= tol * nb) { *relres = rn / nb; return it; }
        }
        *relres = rn / nb;
    }
    return maxiter;
}
"""


class _SplitCSR(ctypes.Structure):
    _fields_ = [
        ("n", ctypes.c_int),
        ("lp", ctypes.c_void_p),
        ("li", ctypes.c_void_p),
        ("lx", ctypes.c_void_p),
        ("up", ctypes.c_void_p),
        ("ui", ctypes.c_void_p),
        ("ux", ctypes.c_void_p),
        ("d", ctypes.c_void_p),
        ("dinv", ctypes.c_void_p),
    ]


@dataclass
class SplitCSR:
    """A square sparse matrix as diagonal + strictly lower + strictly upper CSR parts (float64
    values, int32 indices), ready for the kernels. Build it with ``SplitCSR.from_matrix``."""

    n: int
    diag: np.ndarray
    lower: sp.csr_matrix
    upper: sp.csr_matrix
    inv_diag: np.ndarray

    @classmethod
    def from_matrix(cls, A: sp.spmatrix | np.ndarray) -> SplitCSR:
        A = sp.csr_matrix(A, dtype=np.float64)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"matrix must be square, got {A.shape}")
        diag = np.ascontiguousarray(A.diagonal(), dtype=np.float64)
        if np.any(diag == 0):
            raise ValueError("matrix has a zero on its diagonal; SOR is undefined")
        parts = []
        for part in (sp.tril(A, -1, format="csr"), sp.triu(A, 1, format="csr")):
            part.sort_indices()
            part.indptr = part.indptr.astype(np.int32)
            part.indices = part.indices.astype(np.int32)
            part.data = np.ascontiguousarray(part.data, dtype=np.float64)
            parts.append(part)
        return cls(A.shape[0], diag, parts[0], parts[1], 1.0 / diag)

    def affine(self, scale: float, shift: float) -> SplitCSR:
        """``scale * self + shift * I`` (the sparsity pattern is shared, values are new)."""
        parts = []
        for part in (self.lower, self.upper):
            new = sp.csr_matrix((scale * part.data, part.indices, part.indptr), shape=part.shape)
            parts.append(new)
        diag = scale * self.diag + shift
        if np.any(diag == 0):
            raise ValueError("matrix has a zero on its diagonal; SOR is undefined")
        return SplitCSR(self.n, diag, parts[0], parts[1], 1.0 / diag)

    def matrix(self) -> sp.csr_matrix:
        return (self.lower + self.upper + sp.diags(self.diag)).tocsr()

    @property
    def nnz(self) -> int:
        return self.n + self.lower.nnz + self.upper.nnz

    def _struct(self) -> _SplitCSR:
        ptr = lambda a: a.ctypes.data  # noqa: E731
        return _SplitCSR(
            self.n,
            ptr(self.lower.indptr),
            ptr(self.lower.indices),
            ptr(self.lower.data),
            ptr(self.upper.indptr),
            ptr(self.upper.indices),
            ptr(self.upper.data),
            ptr(self.diag),
            ptr(self.inv_diag),
        )


_lib: ctypes.CDLL | None = None
_unavailable: str | None = None


def _build(target: Path) -> None:
    """Compile ``SOURCE`` into the shared library ``target``."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc/gcc, or $CC) found")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sor_kernels.c"
        src.write_text(SOURCE)
        flags = ["-O3", "-ffp-contract=off", "-fPIC", "-shared"]
        cmd = [compiler, *flags, str(src), "-o", str(target), "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling the SOR kernels failed: {done.stderr.strip()[:500]}")


def load(cache: Cache) -> ctypes.CDLL | None:
    """The compiled kernels, compiled once per machine through ``cache`` (a problem's
    ``setup`` passes ``ctx.cache``), or None when no C compiler is available."""
    global _lib, _unavailable
    if _lib is not None or _unavailable is not None:
        return _lib
    key = {"source": hashlib.sha256(SOURCE.encode()).hexdigest(), "cc": os.environ.get("CC")}
    try:
        lib = ctypes.CDLL(str(cache.get_or_build("sor_kernels", key, _build, suffix=".so")))
    except (OSError, RuntimeError) as exc:
        _unavailable = str(exc)
        log.warning("SOR kernels unavailable (%s); using the slow scipy implementation", exc)
        return None
    dbl, cint, vp = ctypes.c_double, ctypes.c_int, ctypes.c_void_p
    lib.sor_solve.argtypes = [ctypes.POINTER(_SplitCSR), vp, vp, dbl, dbl, cint, vp, vp, vp]
    lib.sor_solve.restype = cint
    lib.pcg_solve.argtypes = [ctypes.POINTER(_SplitCSR), vp, vp, dbl, cint, dbl, cint, vp, vp]
    lib.pcg_solve.restype = cint
    _lib = lib
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded kernels; compiled into a temporary directory if no cache loaded them yet."""
    return load(MemoryCache())


def _vector(v: np.ndarray, n: int, name: str) -> np.ndarray:
    if v.shape != (n,) or v.dtype != np.float64 or not v.flags.c_contiguous:
        raise ValueError(f"{name}: expected a contiguous float64 vector of length {n}")
    return v


def sor_solve(
    A: SplitCSR, b: np.ndarray, x: np.ndarray, omega: float, tol: float, maxiter: int
) -> tuple[int, float]:
    """Run natural-order SOR on ``A x = b`` from ``x`` (overwritten with the final iterate).

    Returns ``(iterations, relative residual)``; iterations is ``maxiter`` when
    ``||r_k|| / ||r_0|| < tol`` was never reached.
    """
    if not 0.0 < omega < 2.0:
        raise ValueError(f"omega must be in (0, 2), got {omega}")
    lib = library()
    if lib is None:
        from optbench.problems.sor_sequence.reference import plain_sor

        return plain_sor(A.matrix(), b, x, omega, tol, maxiter)
    b, x = _vector(b, A.n, "b"), _vector(x, A.n, "x")
    r, delta, relres = np.empty(A.n), np.empty(A.n), np.zeros(1)
    struct = A._struct()
    k = lib.sor_solve(
        ctypes.byref(struct),
        b.ctypes.data,
        x.ctypes.data,
        omega,
        tol,
        maxiter,
        r.ctypes.data,
        delta.ctypes.data,
        relres.ctypes.data,
    )
    return int(k), float(relres[0])


def pcg_solve(
    A: SplitCSR,
    b: np.ndarray,
    x: np.ndarray,
    omega: float | None,
    tol: float,
    maxiter: int,
    order: SweepOrder = "backward_forward",
) -> tuple[int, float]:
    """CG on symmetric positive definite ``A x = b`` from ``x`` (overwritten), preconditioned
    by SSOR(omega) with the triangular sweeps in ``order`` (see ``SweepOrder``), or
    unpreconditioned when ``omega`` is None. Returns ``(iterations, ||b - A x|| / ||b||)``;
    iterations is ``maxiter`` when not converged."""
    if order not in SWEEP_ORDERS:
        raise ValueError(f"order must be one of {SWEEP_ORDERS}, got {order!r}")
    if omega is not None and not 0.0 < omega < 2.0:
        raise ValueError(f"omega must be in (0, 2), got {omega}")
    lib = library()
    if lib is None:
        from optbench.problems.sor_sequence.reference import plain_pcg

        return plain_pcg(A.matrix(), b, x, omega, tol, maxiter, order)
    b, x = _vector(b, A.n, "b"), _vector(x, A.n, "x")
    work, relres = np.empty(4 * A.n), np.zeros(1)
    struct = A._struct()
    k = lib.pcg_solve(
        ctypes.byref(struct),
        b.ctypes.data,
        x.ctypes.data,
        0.0 if omega is None else omega,
        int(order == "backward_forward"),
        tol,
        maxiter,
        work.ctypes.data,
        relres.ctypes.data,
    )
    return int(k), float(relres[0])
