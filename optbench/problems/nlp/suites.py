"""Named problem suites: lists of CUTEst problems, vendored under ``<data dir>/suites``.

A suite file is a TSV with ``#`` comment lines and rows ``name  s2mpj  n  m``: the CUTEst name,
the S2MPJ module (``-`` when S2MPJ has no translation), and the sizes the source paper used
(``?`` when unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optbench.contracts.errors import ConfigError, DataError

#: suite name -> file under ``<data dir>/suites``
SUITES = {"adasketch47": "adasketch_cutest47.tsv"}


@dataclass(frozen=True)
class SuiteEntry:
    name: str
    s2mpj: str | None  # None: no S2MPJ translation
    n: int | None
    m: int | None

    @property
    def loadable(self) -> bool:
        return self.s2mpj is not None


def load_suite(suite: str, data_dir: Path) -> list[SuiteEntry]:
    """The entries of a vendored suite (in ``data_dir``, e.g. ``ctx.data_dir``), in file order."""
    if suite not in SUITES:
        raise ConfigError(f"suite: unknown suite '{suite}' (known: {', '.join(SUITES)})")
    path = data_dir / "suites" / SUITES[suite]
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise DataError(f"{path}: line {number}: expected 4 tab-separated fields")
        name, module, n, m = fields
        entries.append(
            SuiteEntry(
                name,
                None if module == "-" else module,
                int(n) if n.isdigit() else None,
                int(m) if m.isdigit() else None,
            )
        )
    return entries
