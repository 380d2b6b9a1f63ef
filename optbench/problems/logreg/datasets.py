"""LIBSVM binary classification files: the vendored sets by name, and a checked loader.

Vendored under ``<data dir>/libsvm`` (``ctx.data_dir``: ``optbench/data``; provenance and
checksums in its SOURCES.md). Files are
parsed with scikit-learn's ``load_svmlight_file``; when it rejects a file, the file is scanned
to name the first bad line, so a malformed file is a one-line ``DataError`` with file and line.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optbench.contracts.errors import ConfigError, DataError

#: the folder of the vendored LIBSVM sets inside the data directory
LIBSVM = "libsvm"


@dataclass(frozen=True)
class DatasetFiles:
    train: str
    test: str | None = None
    n_features: int | None = None


#: The vendored sets: name -> (train file, test file, feature count from the LIBSVM page).
VENDORED: dict[str, DatasetFiles] = {
    "heart_scale": DatasetFiles("heart_scale", None, 13),
    "a1a": DatasetFiles("a1a", "a1a.t.gz", 123),
    "a9a": DatasetFiles("a9a.gz", "a9a.t.gz", 123),
    "australian_scale": DatasetFiles("australian_scale", None, 14),
    "breast-cancer_scale": DatasetFiles("breast-cancer_scale", None, 10),
    "diabetes_scale": DatasetFiles("diabetes_scale", None, 8),
    "ionosphere_scale": DatasetFiles("ionosphere_scale", None, 34),
    "sonar_scale": DatasetFiles("sonar_scale", None, 60),
    "splice_scale": DatasetFiles("splice_scale", None, 60),
    "german.numer": DatasetFiles("german.numer", None, 24),
    "mushrooms": DatasetFiles("mushrooms", None, 112),
    "w1a": DatasetFiles("w1a", None, 300),
    "w8a": DatasetFiles("w8a.gz", None, 300),
}


@dataclass(frozen=True)
class LabelledData:
    """Dense features (samples x features, float64) and labels in {-1, +1}."""

    X: np.ndarray
    y: np.ndarray
    path: Path
    sha256: str


def resolve(
    dataset: str, data_dir: Path, key: str = "problem.dataset"
) -> tuple[Path, DatasetFiles | None]:
    """A vendored name -> its train file under ``data_dir`` (and registry entry); anything else
    is a file path."""
    if dataset in VENDORED:
        return data_dir / LIBSVM / VENDORED[dataset].train, VENDORED[dataset]
    path = Path(dataset).expanduser()
    if path.exists():
        return path.resolve(), None
    if "/" in dataset or path.suffix:
        raise DataError(f"{key}: no such file: {dataset}")
    raise ConfigError(
        f"{key}: unknown dataset '{dataset}' (vendored: {', '.join(VENDORED)}; or give a path)"
    )


def _first_bad_line(path: Path, n_features: int | None) -> str | None:
    """Scan a LIBSVM file; describe its first malformed line as ``line N: reason``."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            label, *tokens = line.split()
            try:
                float(label)
            except ValueError:
                return f"line {number}: label '{label}' is not a number"
            previous = 0
            for token in tokens:
                index, sep, value = token.partition(":")
                if not sep:
                    return f"line {number}: token '{token}' is not index:value"
                if index == "qid":
                    continue
                try:
                    idx = int(index)
                except ValueError:
                    return f"line {number}: feature index '{index}' is not an integer"
                if idx < 1:
                    return f"line {number}: feature index {idx} (LIBSVM indices start at 1)"
                if idx <= previous:
                    return f"line {number}: feature indices not increasing at '{token}'"
                if n_features is not None and idx > n_features:
                    return f"line {number}: feature index {idx} exceeds n_features={n_features}"
                try:
                    float(value)
                except ValueError:
                    return f"line {number}: value '{value}' of feature {idx} is not a number"
                previous = idx
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _parse(path: Path, n_features: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_svmlight_file

    if not path.is_file():
        raise DataError(f"no such data file: {path}")
    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, zero_based=False)
    except (ValueError, OSError, EOFError) as exc:
        where = _first_bad_line(path, n_features) if isinstance(exc, ValueError) else None
        raise DataError(f"{path}: {where or ' '.join(str(exc).split())}") from None
    if X.shape[0] == 0:
        raise DataError(f"{path}: no samples")
    dense = np.ascontiguousarray(X.toarray(), dtype=np.float64)
    dense.setflags(write=False)
    y.setflags(write=False)
    return dense, y, _sha256(path)


def load(
    path: Path,
    n_features: int | None,
    classes: tuple[float, float] | None = None,
) -> tuple[LabelledData, tuple[float, float]]:
    """Parse ``path`` and map its two labels to -1/+1 (the smaller to -1).

    ``classes`` fixes the mapping (a test file must use the training file's labels).
    """
    X, y, sha = _parse(path, n_features)
    found = tuple(sorted({float(v) for v in np.unique(y)}))
    if classes is None:
        if len(found) != 2:
            raise DataError(f"{path}: binary classification needs 2 labels, found {list(found)}")
        classes = (found[0], found[1])
    elif not set(found) <= set(classes):
        raise DataError(
            f"{path}: labels {list(found)} are not among the training labels {list(classes)}"
        )
    signs = np.where(y == classes[1], 1.0, -1.0)
    return LabelledData(X, signs, path, sha), classes
