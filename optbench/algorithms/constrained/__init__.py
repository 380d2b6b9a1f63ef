"""Methods for equality-constrained nonlinear programs (kind ``nlp``): AdaSketch-Newton and
its baselines (inexact and exact SQP, augmented Lagrangian, SciPy's solvers)."""

from optbench.algorithms.constrained.adasketch import AdaSketchNewton
from optbench.algorithms.constrained.auglag import AugmentedLagrangian
from optbench.algorithms.constrained.scipy_methods import ScipySLSQP, ScipyTrustConstr
from optbench.algorithms.constrained.sqp import SqpL1Gmres, SqpL1GmresAdaptive, SqpNewton

__all__ = [
    "AdaSketchNewton",
    "AugmentedLagrangian",
    "ScipySLSQP",
    "ScipyTrustConstr",
    "SqpL1Gmres",
    "SqpL1GmresAdaptive",
    "SqpNewton",
]
