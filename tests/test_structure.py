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
