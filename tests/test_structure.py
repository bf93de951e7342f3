"""Package structure rules of the project guide: short functions, and a light top-level import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "aclnet_kd"
MAX_LINES = 80


def long_functions(root: Path = SRC, limit: int = MAX_LINES) -> list[str]:
    """``path:line name (n lines)`` of every function or method in ``root`` longer than ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_src_is_longer_than_80_lines():
    offenders = long_functions()
    assert not offenders, "functions over 80 lines:\n" + "\n".join(offenders)


def test_the_length_check_sees_a_long_function(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n" + "    x = 1\n" * 90)
    assert long_functions(tmp_path) == [f"{tmp_path.name}/m.py:1 f (91 lines)"]


def test_import_aclnet_kd_loads_neither_torch_nor_timm():
    code = ("import sys, aclnet_kd, aclnet_kd.config, aclnet_kd.io, aclnet_kd.constants, aclnet_kd.losses.registry, "
            "aclnet_kd.train.record, aclnet_kd.workflow.plan; "
            "loaded = [m for m in ('torch', 'timm') if m in sys.modules]; assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_checkpoint_and_models_do_not_import_each_other():
    def imports(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        return names | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    assert not any(name.startswith("aclnet_kd.models") for name in imports(SRC / "checkpoint.py"))
    assert not any(name == "aclnet_kd.checkpoint" for name in imports(SRC / "models" / "loading.py"))


# ---- the import graph: no circle, and the layers import downwards only (docs/architecture.md, "Layers") ----
def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement names (``from a import b``: ``a`` and ``a.b``; relative resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """{module: the package's modules it imports, anywhere in the file (late imports included)}."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package):
                while target and target not in files:  # `from pkg import function` -> pkg
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle of imports as a path that returns to its start (one per strongly connected group)."""
    cycles, done = [], set()
    for start in sorted(graph):
        if start in done:
            continue
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append(path + [start])
                    done.update(path)
                    stack = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        done.add(start)
    return cycles


def test_no_import_circle_in_the_package():
    cycles = import_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_losses_import_nothing_from_models():
    """The losses take their shapes from constants (LEVEL_CHANNELS), never from models/ (which loads timm)."""
    arrows = [f"{name} -> {target}" for name, targets in import_graph().items() if name.startswith("aclnet_kd.losses")
              for target in targets if target.startswith("aclnet_kd.models")]
    assert not arrows, arrows


def test_the_import_checks_see_a_circle_and_an_arrow_up(tmp_path):
    package = tmp_path / "aclnet_kd"
    for name, text in {"__init__.py": "", "a.py": "from aclnet_kd.b import f\n", "b.py": "def f():\n    from . import a\n",
                       "losses/__init__.py": "", "losses/x.py": "from aclnet_kd.models.m import C\n",
                       "models/__init__.py": "", "models/m.py": "C = 1\n"}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph["aclnet_kd.b"] == {"aclnet_kd", "aclnet_kd.a"}  # `from . import a`: the package and a
    assert import_cycles(graph) == [["aclnet_kd.a", "aclnet_kd.b", "aclnet_kd.a"]]
    assert graph["aclnet_kd.losses.x"] == {"aclnet_kd.models.m"}
