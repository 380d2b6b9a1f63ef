"""The classification sets scikit-learn ships inside its wheel (nothing is downloaded).

``load(name, test_fraction)`` returns standardised float64 features and integer labels, split
into train and test by a stratified split with a fixed ``random_state`` (the split is part of
the data set, not of a run's seed: every seed sees the same data, so the reference optimum can
be computed once). Features are centred and scaled by the training split's mean and standard
deviation (a constant column is only centred).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optbench.contracts.errors import ConfigError

#: name -> scikit-learn loader function name (all bundled with the package).
BUNDLED = {
    "digits": "load_digits",  # 1797 x 64, 10 classes (8x8 handwritten digits)
    "iris": "load_iris",  # 150 x 4, 3 classes
    "wine": "load_wine",  # 178 x 13, 3 classes
    "breast_cancer": "load_breast_cancer",  # 569 x 30, 2 classes
}


@dataclass(frozen=True)
class Split:
    """Standardised features (float64) and labels 0..n_classes-1 of both splits."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def load(name: str, test_fraction: float, key: str = "problem.dataset") -> Split:
    """The bundled set ``name``, split (stratified, ``random_state=0``) and standardised."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    if name not in BUNDLED:
        raise ConfigError(f"{key}: unknown dataset '{name}' (bundled: {', '.join(BUNDLED)})")
    X, y = getattr(sklearn.datasets, BUNDLED[name])(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    y = np.unique(np.asarray(y), return_inverse=True)[1]
    if test_fraction > 0:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_fraction, random_state=0, stratify=y
        )
    else:
        X_train, y_train, X_test, y_test = X, y, X[:0], y[:0]
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return Split(
        (X_train - mean) / std,
        y_train.astype(np.int64),
        (X_test - mean) / std,
        y_test.astype(np.int64),
        int(y.max()) + 1,
    )
