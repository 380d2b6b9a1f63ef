"""LIBSVM binary classification files: the vendored sets by name, and a checked loader.

Vendored under ``<data dir>/libsvm`` (``ctx.data_dir``: ``optbench/data``; provenance and
checksums in its SOURCES.md). Files are
parsed with scikit-learn's ``load_svmlight_file``; when it rejects a file, the file is scanned
to name the first bad line, so a malformed file is a one-line ``DataError`` with file and line.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    is a file path (a directory or a binary file is refused naming it)."""
    if dataset in VENDORED:
        return data_dir / LIBSVM / VENDORED[dataset].train, VENDORED[dataset]
    path = Path(dataset).expanduser()
    if path.is_dir():
        raise DataError(f"{key}: {dataset} is a directory, not a LIBSVM file")
    if path.exists():
        _check_text(path, key)
        return path.resolve(), None
    if "/" in dataset or path.suffix:
        raise DataError(f"{key}: no such file: {dataset}")
    raise ConfigError(
        f"{key}: unknown dataset '{dataset}' (vendored: {', '.join(VENDORED)}; or give a path)"
    )


def _check_text(path: Path, key: str) -> None:
    """Refuse a file that is not text (LIBSVM files are text, optionally gzipped)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
    except OSError as exc:
        raise DataError(f"{key}: {path}: cannot read ({exc.strerror})") from None
    if head.startswith(b"\x1f\x8b"):  # gzip
        return
    if b"\x00" in head:
        raise DataError(f"{key}: {path} is a binary file, not LIBSVM text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the block
            raise DataError(f"{key}: {path} is not text (byte {exc.start}), not LIBSVM") from None


def _shown(token: str) -> str:
    """A token of a bad line as printable ASCII, shortened: safe to print on a terminal."""
    text = token.encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= 40 else text[:37] + "..."


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
                return f"line {number}: label '{_shown(label)}' is not a number"
            previous = 0
            for token in tokens:
                index, sep, value = token.partition(":")
                if not sep:
                    return f"line {number}: token '{_shown(token)}' is not index:value"
                if index == "qid":
                    continue
                try:
                    idx = int(index)
                except ValueError:
                    return f"line {number}: feature index '{_shown(index)}' is not an integer"
                if idx < 1:
                    return f"line {number}: feature index {idx} (LIBSVM indices start at 1)"
                if idx <= previous:
                    return f"line {number}: feature indices not increasing at '{_shown(token)}'"
                if n_features is not None and idx > n_features:
                    return f"line {number}: feature index {idx} exceeds n_features={n_features}"
                try:
                    float(value)
                except ValueError:
                    shown = _shown(value)
                    return f"line {number}: value '{shown}' of feature {idx} is not a number"
                previous = idx
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def available_memory() -> int:
    """Bytes of memory available to this process now (``MemAvailable``; else physical memory)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.3g} GB"


def check_fits(path: Path, n_samples: int, n_features: int) -> None:
    """Refuse data whose dense form cannot fit: the problems built on it hold the samples as a
    dense float64 matrix (and a copy on the device) and form d x d Hessians of the logistic loss
    (reference solve, Newton), so they need about 8 (2 n d + 3 d^2) bytes."""
    need = 8.0 * (2.0 * n_samples * n_features + 3.0 * n_features**2)
    have = available_memory()
    if need > have:
        raise DataError(
            f"{path}: {n_samples} samples x {n_features} features need about "
            f"{_gigabytes(need)} as dense matrices (data and d x d Hessians); "
            f"{_gigabytes(have)} of memory is available (set problem.n_features if the file's "
            "largest feature index is a mistake)"
        )


@functools.lru_cache(maxsize=8)
def _parse(path: Path, n_features: int | None) -> tuple[Any, np.ndarray, str]:
    """The file's samples as a sparse CSR matrix, its labels and its sha256."""
    from sklearn.datasets import load_svmlight_file

    if not path.is_file():
        raise DataError(f"no such data file: {path}")
    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, zero_based=False)
    except OverflowError:  # its indices are 32-bit integers
        raise DataError(
            f"{path}: a feature index exceeds {2**31 - 1}, the largest scikit-learn's LIBSVM "
            "loader reads"
        ) from None
    except (ValueError, OSError, EOFError) as exc:
        where = _first_bad_line(path, n_features) if isinstance(exc, ValueError) else None
        raise DataError(f"{path}: {where or _shown(' '.join(str(exc).split()))}") from None
    if X.shape[0] == 0:
        raise DataError(f"{path}: no samples")
    y.setflags(write=False)
    return X, y, _sha256(path)


@functools.lru_cache(maxsize=8)
def _dense(path: Path, n_features: int | None) -> np.ndarray:
    X = _parse(path, n_features)[0]
    check_fits(path, *X.shape)
    dense = np.ascontiguousarray(X.toarray(), dtype=np.float64)
    dense.setflags(write=False)
    return dense


def load(
    path: Path,
    n_features: int | None,
    classes: tuple[float, float] | None = None,
) -> tuple[LabelledData, tuple[float, float]]:
    """Parse ``path`` and map its two labels to -1/+1 (the smaller to -1).

    ``classes`` fixes the mapping (a test file must use the training file's labels). Data that
    cannot fit in memory as dense matrices is refused before any is allocated (``check_fits``).
    """
    _, y, sha = _parse(path, n_features)
    X = _dense(path, n_features)
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
