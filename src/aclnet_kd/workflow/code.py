"""Which source files a job runs: the import closure of its entry modules, module by module.

Both front ends take a job's code dependencies from here through the plan (plan.code_files): Snakemake as
rule inputs, DVC as stage deps. A module is listed as its file, with the ``__init__.py`` of each package
above it (Python runs those on import); the root package's own ``__init__`` (a docstring) is left out.
Modules that a job loads by name (a loss term's builder, a synthetic dataset's generator: importlib, never
an ``import`` statement) are not found by reading imports: the plan adds the ones each job loads. Standard library only: the Snakefile imports this on every `snakemake -n`.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "aclnet_kd"
SRC_ROOT = Path(__file__).resolve().parents[2]  # the folder holding aclnet_kd/
SRC_PREFIX = "src"  # SRC_ROOT relative to the repository root (the paths the front ends see)


def module_file(module: str, src_root: Path = SRC_ROOT) -> Path | None:
    """The file of an aclnet_kd module (``a/b.py`` or ``a/b/__init__.py``), None when there is none."""
    base = src_root / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def imports(path: Path, module: str, src_root: Path = SRC_ROOT) -> frozenset[str]:
    """The aclnet_kd modules ``path`` imports, anywhere in the file (late imports included)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names
                      if module_file(f"{base}.{alias.name}", src_root) is not None}
    return frozenset(name for name in found if name.split(".")[0] == PACKAGE and module_file(name, src_root))


def _with_packages(module: str) -> list[str]:
    """``module`` and the packages above it (importing a.b.c runs a/__init__ and a/b/__init__ first)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def module_closure(modules: list[str], src_root: Path = SRC_ROOT) -> set[str]:
    """``modules`` and every aclnet_kd module they import, transitively, with their packages."""
    seen: set[str] = set()
    todo = [package for module in modules for package in _with_packages(module)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        found = imports(module_file(module, src_root), module, src_root)
        todo += sorted({package for name in found for package in _with_packages(name)} - seen)
    return seen


def module_paths(modules: set[str], src_root: Path = SRC_ROOT) -> list[str]:
    """The files of ``modules`` as repository paths (``src/aclnet_kd/losses/cld.py``), sorted; the root
    package's ``__init__`` left out."""
    return sorted(f"{SRC_PREFIX}/{module_file(m, src_root).relative_to(src_root).as_posix()}"
                  for m in modules if m != PACKAGE)
