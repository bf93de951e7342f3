"""aclnet_kd.provenance: commit and dirty flag, versions without importing torch, hostname only by opt-in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aclnet_kd import provenance


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("results are not code\n")
    assert provenance.git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": True}
    info = {"git": provenance.git_state(tmp_path), "versions": {"torch": "2.14.0"}}
    assert provenance.short_commit(info) == head[:7] + " (dirty)"
    assert provenance.code_key(info) == (head[:7] + " (dirty)", "2.14.0")


def test_outside_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git looks no higher than `folder`
    assert provenance.git_state(folder) == {"commit": "not a git checkout", "dirty": None}
    assert provenance.short_commit({"git": provenance.git_state(folder)}) == "not a git checkout"
    assert provenance.code_key(None) == ("unknown", "unknown")


def test_collect_names_versions_without_importing_torch() -> None:
    code = ("import json, sys; from aclnet_kd import provenance; info = provenance.collect(); "
            "assert 'torch' not in sys.modules, 'provenance imported torch'; print(json.dumps(info))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd="/").stdout  # from any folder: the commit is that of the code, not of the cwd
    import json

    info = json.loads(out)
    from importlib.metadata import version

    assert info["versions"]["torch"] == version("torch") and info["versions"]["timm"] == version("timm")
    assert set(info["versions"]) == {"python", *provenance.PACKAGES}
    assert info["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["gpu"] is None  # torch not imported: no GPU query
    assert info["cpu"] and info["cpu"] != "unknown"
    assert len(info["git"]["commit"]) == 40  # the package's source is the project's checkout (editable install)
    assert "hostname" not in info and "date" in info and "torch_build" not in info
    assert "date" not in provenance.collect(with_date=False)


def test_hostname_only_by_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    monkeypatch.delenv(provenance.HOSTNAME_ENV, raising=False)
    assert "hostname" not in provenance.collect()
    monkeypatch.setenv(provenance.HOSTNAME_ENV, "1")
    assert provenance.collect()["hostname"] == platform.node()
    monkeypatch.setenv(provenance.HOSTNAME_ENV, "0")
    assert "hostname" not in provenance.collect()


def test_gpu_named_only_when_torch_is_loaded_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a stand-in torch module shows which calls name it (the real one is used on a GPU machine)."""
    import types

    cuda = types.SimpleNamespace(is_available=lambda: True, get_device_name=lambda index: f"NVIDIA H200 #{index}")
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda, __version__="2.14.1+cu130"))
    assert provenance.gpu_name() == "NVIDIA H200 #0"
    assert provenance.collect()["torch_build"] == "2.14.1+cu130"
    assert provenance.package_versions()["torch"] != "2.14.1+cu130"  # the metadata's, as in torch-free processes
    cuda.is_available = lambda: False
    assert provenance.gpu_name() is None
    monkeypatch.delitem(sys.modules, "torch")
    assert provenance.gpu_name() is None


def test_torch_and_torch_free_processes_agree_on_the_code_key() -> None:
    """run.json (a torch process) and metrics.json (torch-free) of one row group together in the tables."""
    import json

    code = "import json; from aclnet_kd import provenance; print(json.dumps(provenance.collect()))"
    free = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                     text=True).stdout)
    loaded = json.loads(subprocess.run([sys.executable, "-c", "import torch; " + code], check=True,
                                       capture_output=True, text=True).stdout)
    assert "torch_build" in loaded and "torch_build" not in free
    assert provenance.code_key(free) == provenance.code_key(loaded)
