"""Reproduction records: generated from the reproduction: block and a report directory; the
README index lists each record with its verdict line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optbench.platform.errors import ConfigError
from optbench.platform.reproduction import (
    INDEX_BEGIN,
    INDEX_END,
    update_readme,
    verdict_line,
    write_record,
)

SPEC = {
    "paper": "Someone. A paper | with a bar. 2024",
    "authors_code": "https://example.org/code (commit abc)",
    "scale": "quick",
    "protocol": "2 sets, 6 seeds",
    "differs_from_paper": "fewer steps",
    "main_figure": "convergence_gap_vs_step.png",
    "deviations": [{"option": "a.b=c", "authors": "x", "ours": "y", "effect": "+1%"}],
}


def report_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "report"
    folder.mkdir()
    pd.DataFrame(
        {
            "claim": ["one", "two", "three"],
            "text": ["A beats B", "C within 1%", "D best"],
            "source": ["sec. 1", "fig. 2", "tab. 3"],
            "verdict": ["reproduced", "contradicted", "reproduced"],
            "evidence": ["2/2 rows hold", "0/1 rows hold, 1 fail", "exact"],
        }
    ).to_csv(folder / "claims.csv", index=False)
    pd.DataFrame({"seed": [0, 1, 0, 1]}).to_csv(folder / "runs.csv", index=False)
    (folder / "table.md").write_text("final gap\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (folder / "convergence_gap_vs_step.png").write_bytes(b"\x89PNG fake")
    return folder


def test_record_holds_paper_verdicts_figure_and_command(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "reproductions"
    overrides = ["experiment=exp", "seed=0,1", "tracking.uri=sqlite:////tmp/elsewhere.db"]
    record = write_record("exp", SPEC, report_dir(tmp_path), docs, overrides)
    text = record.path.read_text()
    assert record.verdicts == "3 claims: 2 reproduced, 1 contradicted"
    assert "## Verdicts: 3 claims: 2 reproduced, 1 contradicted" in text
    assert "A paper \\| with a bar" in text  # a table-breaking bar is escaped
    assert "| `two`: C within 1% | fig. 2 | **contradicted** | 0/1 rows hold, 1 fail |" in text
    assert "4 runs, 2 seeds" in text and "![convergence_gap_vs_step](exp/" in text
    assert (docs / "exp" / "convergence_gap_vs_step.png").read_bytes() == b"\x89PNG fake"
    # the commands to regenerate: the experiment once, the reader's own store
    assert "optbench -m experiment=exp seed=0,1\n" in text
    assert "optbench-report --record experiment=exp seed=0,1\n" in text
    regenerate = text.split("## Regenerate")[1]
    assert "tracking.uri" not in regenerate and regenerate.count("experiment=exp") == 2
    assert "| `a.b=c` | x | y | +1% |" in text

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Reproductions\n\n{INDEX_BEGIN}\nold\n{INDEX_END}\n\nmore\n")
    update_readme(readme, docs)
    new = readme.read_text()
    assert "old" not in new and new.endswith("\n\nmore\n")
    assert "| [`exp`](docs/reproductions/exp.md) |" in new
    assert "| quick | 3 claims: 2 reproduced, 1 contradicted |" in new


def test_missing_figure_and_markers_are_one_line_errors(tmp_path: Path) -> None:
    folder = report_dir(tmp_path)
    with pytest.raises(ConfigError, match=r"main_figure: 'nope\.png' .*convergence_gap_vs_step"):
        write_record("exp", {**SPEC, "main_figure": "nope.png"}, folder, tmp_path / "d", [])
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(ConfigError, match="no reproductions index markers"):
        update_readme(readme, tmp_path)


def test_verdict_line() -> None:
    assert verdict_line(pd.DataFrame()) == "no claims"
    one = pd.DataFrame({"verdict": ["inconclusive"]})
    assert verdict_line(one) == "1 claim: 1 inconclusive"
