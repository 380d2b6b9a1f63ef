"""Grid operators and the heat-equation ingredients (Khodak et al. 2024, sec. 6 and app.)."""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.sparse as sp


def laplacian_5pt(m: int) -> sp.csr_matrix:
    """The 5-point Laplacian on the m x m interior of an (m+2) x (m+2) grid in natural
    (row-major) order: 4 on the diagonal, -1 for each grid neighbour (MATLAB's
    ``delsq(numgrid('S', m + 2))``). Order n = m^2."""
    T = sp.diags([-1.0, 4.0, -1.0], [-1, 0, 1], shape=(m, m))
    S = sp.diags([-1.0, -1.0], [-1, 1], shape=(m, m))
    return (sp.kron(sp.eye(m), T) + sp.kron(S, sp.eye(m))).tocsr()


def laplacian_5pt_extremes(m: int) -> tuple[float, float]:
    """Smallest and largest eigenvalue of ``laplacian_5pt(m)``: 4 -/+ 4 cos(pi / (m + 1))."""
    c = 4.0 * np.cos(np.pi / (m + 1))
    return 4.0 - c, 4.0 + c


def bump(points: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    """``exp(1 - 1 / (1 - min(1, ||x - c||^2 / r^2)))``: 1 at the centre, 0 outside radius r."""
    q = np.minimum(1.0, ((points - np.asarray(centre)) ** 2).sum(axis=1) / radius**2)
    with np.errstate(divide="ignore"):
        return np.exp(1.0 - 1.0 / (1.0 - q))


def kappa(t: np.ndarray | float) -> np.ndarray | float:
    """The diffusion coefficient ``max(0.1 sin 2 pi t, -10 sin 2 pi t)`` (always >= 0)."""
    s = np.sin(2.0 * np.pi * np.asarray(t))
    return np.maximum(0.1 * s, -10.0 * s)


def forcing(t: float, points: np.ndarray) -> np.ndarray:
    """``32 bump(x; (0.5 + cos(16 pi t)/4, 0.5 + sin(16 pi t)/4), 0.125)``: a circling source."""
    centre = (0.5 + np.cos(16 * np.pi * t) / 4, 0.5 + np.sin(16 * np.pi * t) / 4)
    return 32.0 * bump(points, centre, 0.125)


class HeatGrid:
    """The unit square with zero Dirichlet boundary, ``nx`` cells per side (spacing 1/nx):
    ``(nx - 1)^2`` interior unknowns ordered with the second coordinate fastest.

    ``L`` is the 5-point Laplacian divided by ``dx^2`` (negative definite). The Crank-Nicolson
    system for ``u_t -> u_{t+1}`` is ``(I - s L) u_{t+1} = (I + s L) u_t + dt f`` with
    ``s = kappa dt / 2``; ``step`` solves it exactly with the discrete sine transform (L's
    eigenvectors), which is a direct solve in O(n log n).
    """

    def __init__(self, nx: int) -> None:
        self.nx, self.m = nx, nx - 1
        self.n = self.m**2
        self.dx = 1.0 / nx
        self.L = -laplacian_5pt(self.m) / self.dx**2
        coords = np.arange(1, nx) * self.dx
        first, second = np.meshgrid(coords, coords, indexing="ij")
        self.points = np.column_stack([first.ravel(), second.ravel()])
        k = np.arange(1, nx)
        s2 = np.sin(k * np.pi / (2 * nx)) ** 2
        self.eigenvalues = -4.0 / self.dx**2 * (s2[:, None] + s2[None, :])  # of L, (m, m)

    def initial(self) -> np.ndarray:
        return bump(self.points, (0.5, 0.5), 0.25)

    def system_parts(self, t: float, dt: float, u: np.ndarray) -> tuple[float, np.ndarray]:
        """``(s, b)`` of the Crank-Nicolson step from time t: A = I - s L, b as above."""
        half = t + 0.5 * dt
        s = 0.5 * float(kappa(half)) * dt
        b = u + s * (self.L @ u) + dt * forcing(half, self.points)
        return s, b

    def solve_shifted(self, s: float, b: np.ndarray) -> np.ndarray:
        """The exact solution of ``(I - s L) x = b`` by the 2-D type-I discrete sine transform."""
        B = scipy.fft.dstn(b.reshape(self.m, self.m), type=1, norm="ortho")
        X = scipy.fft.idstn(B / (1.0 - s * self.eigenvalues), type=1, norm="ortho")
        return X.ravel()
