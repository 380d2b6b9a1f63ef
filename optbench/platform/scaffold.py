"""``optbench init [DIR]``: a new project that benchmarks its own method against optbench's.

The project template (``optbench/platform/project_template``, package data) is copied as it is:
``my_method.py`` (an algorithm subclassing ``optbench.contracts.Algorithm``; its docstring is
its spec), ``configs/algorithm/my_method.yaml``, ``configs/experiment/my_study.yaml`` (my_method
against two built-in baselines on a built-in problem, with a ``report:`` block and a claim), a
README and a ``.gitignore``. It runs as generated. Nothing is overwritten: when one of these
files exists already, nothing is written and the error names it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from optbench.platform.errors import ConfigError

TEMPLATE_DIR = Path(__file__).with_name("project_template")
#: template files stored under another name (package-data globs skip dot files).
RENAMED = {"gitignore": ".gitignore"}
USAGE = "usage: optbench init [DIR]   (a new project in DIR, default: the current directory)"


def template_files() -> dict[Path, Path]:
    """Template file -> its path relative to the new project."""
    files = {}
    for source in sorted(TEMPLATE_DIR.rglob("*")):
        relative = source.relative_to(TEMPLATE_DIR)
        if source.is_file() and "__pycache__" not in relative.parts:
            files[source] = relative.with_name(RENAMED.get(relative.name, relative.name))
    return files


def init_project(directory: Path) -> list[Path]:
    """Write the project template into ``directory`` (created if missing); the files written."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"init: {directory} is a file, not a directory")
    files = {source: directory / relative for source, relative in template_files().items()}
    existing = [str(target.relative_to(directory)) for target in files.values() if target.exists()]
    if existing:
        raise ConfigError(
            f"init: {directory} already has {', '.join(existing)}; nothing was written "
            "(run optbench init in a new or empty directory)"
        )
    for source, target in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return list(files.values())


def main(args: list[str]) -> None:
    """``optbench init [DIR]``: write the project and say what to run next."""
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return
    if len(args) > 1 or any(a.startswith("-") for a in args):
        raise ConfigError(f"init: expected at most one directory, got {' '.join(args)} ({USAGE})")
    directory = Path(args[0] if args else ".").resolve()
    written = init_project(directory)
    print(f"a new optbench project in {directory}:")
    for path in written:
        print(f"  {path.relative_to(directory)}")
    cd = "" if directory == Path.cwd() else f"cd {args[0]} && "
    print(f"next: {cd}optbench -m experiment=my_study   (then optbench-report experiment=my_study)")
