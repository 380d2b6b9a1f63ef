"""Equality-constrained nonlinear programs (kind ``nlp``): CUTEst via S2MPJ, constrained
logistic regression on LIBSVM data, and a PDE-constrained control problem."""

from optbench.problems.nlp.constrained_logreg import ConstrainedLogReg
from optbench.problems.nlp.cutest import CutestProblem
from optbench.problems.nlp.pde_control import PDEControl

__all__ = ["ConstrainedLogReg", "CutestProblem", "PDEControl"]
