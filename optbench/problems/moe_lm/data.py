"""The character-level corpus: the vendored tiny-Shakespeare text or any UTF-8 text file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optbench.contracts.errors import DataError

#: vendored corpora (under ``<data dir>/text``) and their sha256 (see its SOURCES.md)
VENDORED = {
    "tinyshakespeare": (
        "tinyshakespeare.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}


@dataclass
class Corpus:
    """Token ids of the whole text (int64), its character vocabulary and provenance."""

    ids: np.ndarray
    vocab: list[str]
    path: Path
    sha256: str


def resolve(name: str, data_dir: Path, key: str) -> tuple[Path, str | None]:
    """The file of a vendored corpus name under ``data_dir`` (and its expected sha256) or of a
    path."""
    if name in VENDORED:
        file, sha = VENDORED[name]
        return data_dir / "text" / file, sha
    path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(VENDORED)
        raise DataError(f"{key}: '{name}' is neither a vendored corpus ({known}) nor a file")
    return path, None


def load(name: str, data_dir: Path, key: str = "problem.data") -> Corpus:
    """Read and encode the corpus; ``DataError`` naming the file if it is missing or bad."""
    path, expected = resolve(name, data_dir, key)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    sha = hashlib.sha256(raw).hexdigest()
    if expected is not None and sha != expected:
        raise DataError(
            f"{path}: sha256 {sha[:12]}... differs from the vendored {expected[:12]}..."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text:
        raise DataError(f"{path}: empty file")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    points, ids = np.unique(codes, return_inverse=True)
    return Corpus(ids.astype(np.int64), [chr(int(p)) for p in points], path, sha)
