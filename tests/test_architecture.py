"""The dependency rules of the package, checked on its import graph (every ``import`` statement,
at module level or inside a function):

- ``optbench.contracts`` imports nothing of optbench outside itself;
- ``optbench.platform`` imports no concrete family (``optbench.problems.*``,
  ``optbench.algorithms.*``);
- no family imports ``optbench.platform``;
- the platform's modules import each other without a cycle (report and plots included).

Each rule is also checked on a small fabricated package that breaks it, so the checker itself is
shown to fail when such an import is added.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> set[str]:
    """The optbench modules a file imports (relative imports resolved)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "optbench" or m.startswith("optbench.")}


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> the optbench modules it imports (only modules that exist as files)."""
    files = {module_name(p, root): p for p in (root / "optbench").rglob("*.py")}
    return {
        name: {m for m in imports(path, root) if m in files and m != name}
        for name, path in files.items()
    }


def violations(root: Path) -> list[str]:
    """Every broken rule of the module docstring, one line each."""
    edges = graph(root)
    found = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            if module.startswith("optbench.contracts") and not target.startswith(
                "optbench.contracts"
            ):
                found.append(f"{module} (contracts) imports {target}")
            if module.startswith("optbench.platform") and target.startswith(
                ("optbench.problems.", "optbench.algorithms.")
            ):
                found.append(f"{module} (platform) imports the family {target}")
            if module.startswith(("optbench.problems", "optbench.algorithms")) and (
                target.startswith("optbench.platform")
            ):
                found.append(f"{module} (family) imports {target}")
    platform = {m: {t for t in ts if t.startswith("optbench.platform")} for m, ts in edges.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(platform.get(module, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [target]
                found.append("import cycle: " + " -> ".join(cycle))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(m for m in platform if m.startswith("optbench.platform")):
        if module not in state:
            visit(module, [module])
    return found


def test_the_package_keeps_its_dependency_rules() -> None:
    assert violations(ROOT) == []


def test_report_and_plots_do_not_import_each_other() -> None:
    edges = graph(ROOT)
    assert "optbench.platform.report" not in edges["optbench.platform.plots"]
    assert "optbench.platform.plots" in edges["optbench.platform.report"]


def test_contracts_import_no_third_party_framework() -> None:
    """The vocabulary stands alone: no Hydra, OmegaConf, MLflow or pandas in it."""
    for path in (ROOT / "optbench" / "contracts").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        names |= {
            (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
        }
        assert not names & {"hydra", "omegaconf", "mlflow", "pandas"}, path


def write(root: Path, module: str, source: str) -> None:
    path = root / Path(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if str(parent) != ".":
            (root / parent / "__init__.py").touch()
    path.write_text(source)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("optbench.contracts.thing", "from optbench.platform import runner\n", "(contracts)"),
        ("optbench.contracts.other", "import optbench.problems.logreg\n", "(contracts)"),
        (
            "optbench.platform.thing",
            "def f():\n    from ..problems.logreg import x\n",
            "(platform)",
        ),
        ("optbench.problems.logreg", "from optbench.platform.paths import DATA_DIR\n", "(family)"),
        ("optbench.algorithms.sgd", "from ..platform import build\n", "(family)"),
        ("optbench.platform.plots", "from optbench.platform.report import Table\n", "cycle"),
    ],
)
def test_the_checker_fails_on_each_kind_of_forbidden_import(
    tmp_path: Path, module: str, source: str, expected: str
) -> None:
    for name in (
        "optbench.contracts.problem",
        "optbench.platform.runner",
        "optbench.platform.paths",
        "optbench.platform.build",
        "optbench.problems.logreg",
        "optbench.algorithms.sgd",
    ):
        write(tmp_path, name, "")
    write(tmp_path, "optbench.platform.report", "from optbench.platform import plots\n")
    write(tmp_path, "optbench.platform.plots", "")
    assert violations(tmp_path) == []
    write(tmp_path, module, source)
    found = violations(tmp_path)
    assert found and all(expected in line for line in found), found
