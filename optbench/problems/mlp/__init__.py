"""A small fully connected classifier (torch) on a data set scikit-learn ships (kind
``finite_sum``); with no hidden layer it is multinomial logistic (softmax) regression."""

from optbench.problems.mlp.problem import MLPClassifier

__all__ = ["MLPClassifier"]
