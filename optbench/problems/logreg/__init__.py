"""Binary logistic regression on LIBSVM data (kind ``finite_sum``)."""

from optbench.problems.logreg.problem import LogisticRegression

__all__ = ["LogisticRegression"]
