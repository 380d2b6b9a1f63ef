"""The SOR kernel: achieved memory bandwidth vs the machine's copy bandwidth, and speed-up over
the plain implementation (scipy sparse triangular solve + sparse product per iteration).

For the 5-point Laplacian (+ 0.1 I) with n = 10^4, 10^5, 10^6 unknowns, the compiled kernel
runs a fixed number of SOR iterations (tol = 0, so the test never stops it). Bytes moved per
iteration are the kernel's compulsory traffic (each array read or written once per pass):
pass 1 (delta = M^{-1} r, x += delta) reads the strictly lower CSR part (4-byte index + 8-byte
value per entry, 4-byte row pointers), r, 1/diag, x and writes delta, x; pass 2 (r = N delta)
reads the strictly upper part, diag, delta and writes r: ``12 nnz_offdiag + 8 (n + 1) + 72 n``.
Achieved bandwidth = bytes / time per iteration, divided by the copy bandwidth measured in the
same process (numpy copy of a 256 MB array: 2 x 256 MB moved per copy, best of 5).
The plain implementation (``reference.plain_sor``) is timed on a few iterations of the same
system; the iteration counts of a full solve are compared at the smallest size. Also: a whole
10 x 10 solve (the paper's instance; call overhead included) and SSOR-PCG per iteration vs
scipy's ``cg`` with the same preconditioner.

    python -m benchmarks.sor_kernel [--iterations 30]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from benchmarks.common import best_time, copy_bandwidth, write_result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()

    from optbench.problems.sor_sequence.grids import laplacian_5pt
    from optbench.problems.sor_sequence.kernels import SplitCSR, library, pcg_solve, sor_solve
    from optbench.problems.sor_sequence.reference import plain_pcg, plain_sor

    assert library() is not None, "no C compiler: the kernels are unavailable"
    copy_bw = copy_bandwidth()
    rng = np.random.default_rng(0)
    omega, k = 1.9, args.iterations
    sizes = []
    for m in (100, 316, 1000):
        A = (laplacian_5pt(m) + 0.1 * sp.eye(m * m)).tocsr()
        split = SplitCSR.from_matrix(A)
        n = split.n
        b = rng.standard_normal(n)
        kernel = best_time(lambda: sor_solve(split, b, np.zeros(n), omega, 0.0, k)) / k  # noqa: B023
        plain_iters = 3
        plain = best_time(lambda: plain_sor(A, b, np.zeros(n), omega, 0.0, plain_iters), 2)  # noqa: B023
        plain /= plain_iters
        nnz_off = split.lower.nnz + split.upper.nnz
        moved = 12 * nnz_off + 8 * (n + 1) + 72 * n
        row = {
            "n": n,
            "kernel_s_per_iteration": kernel,
            "plain_s_per_iteration": plain,
            "speedup_over_plain": plain / kernel,
            "bytes_per_iteration": moved,
            "achieved_GBps": moved / kernel / 1e9,
            "fraction_of_copy_bandwidth": moved / kernel / copy_bw,
        }
        if n == 10**4:
            tol = 1e-8
            row["full_solve_iterations_kernel"] = sor_solve(
                split, b, np.zeros(n), omega, tol, 10000
            )[0]
            row["full_solve_iterations_plain"] = plain_sor(A, b, np.zeros(n), omega, tol, 10000)[0]
        sizes.append(row)

    # the paper's instance: a whole 10 x 10 solve, Python call overhead included
    A = (laplacian_5pt(10) - 0.1 * sp.eye(100)).tocsr()
    split, b = SplitCSR.from_matrix(A), rng.standard_normal(100)
    iters = sor_solve(split, b, np.zeros(100), 1.8, 1e-8, 10000)[0]
    small_kernel = (
        best_time(
            lambda: [sor_solve(split, b, np.zeros(100), 1.8, 1e-8, 10000) for _ in range(100)]
        )
        / 100
    )
    small_plain = best_time(lambda: plain_sor(A, b, np.zeros(100), 1.8, 1e-8, 10000), 2)

    # SSOR-PCG per iteration at n = 10^5 (heat-equation-like SPD system)
    m = 316
    A = (sp.eye(m * m) + 0.5 * laplacian_5pt(m)).tocsr()  # I - s L_h, s/dx^2 = 0.5
    split, b = SplitCSR.from_matrix(A), rng.standard_normal(m * m)
    pk = best_time(lambda: pcg_solve(split, b, np.zeros(m * m), 1.5, 0.0, 20)) / 20
    pp = best_time(lambda: plain_pcg(A, b, np.zeros(m * m), 1.5, 0.0, 5), 2) / 5

    write_result(
        "sor_kernel",
        {
            "copy_bandwidth_GBps": copy_bw / 1e9,
            "omega": omega,
            "iterations_timed": k,
            "sizes": sizes,
            "paper_instance_10x10": {
                "iterations": iters,
                "kernel_s_per_solve": small_kernel,
                "plain_s_per_solve": small_plain,
                "speedup_over_plain": small_plain / small_kernel,
            },
            "ssor_pcg_n1e5": {
                "kernel_s_per_iteration": pk,
                "scipy_cg_s_per_iteration": pp,
                "speedup": pp / pk,
            },
        },
    )


if __name__ == "__main__":
    main()
