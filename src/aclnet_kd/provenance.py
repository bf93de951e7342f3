"""Where a record came from: the code (git commit, dirty tree), the packages, the machine.

Every record the pipeline writes (run.json, each metrics.json, the ONNX sidecar) carries this object as its
``provenance``, and the tables' footnotes name the commits their rows came from. Torch-free and cheap: the
versions come from the installed packages' metadata (``importlib.metadata``), never by importing them; the
GPU is named only when the caller already imported torch and CUDA is there.

The hostname is left out unless the user opts in, since records get shared: set the environment variable
``ACLNET_RECORD_HOSTNAME=1`` (docs/architecture.md, "Provenance").
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "timm", "pysodmetrics", "onnxruntime", "snakemake", "dvc")
HOSTNAME_ENV = "ACLNET_RECORD_HOSTNAME"  # "1": records name the machine
NOT_GIT = "not a git checkout"
UNKNOWN = "unknown"


CODE_DIR = Path(__file__).resolve().parent  # the code that runs: its checkout is the one to name


def git_state(where: str | os.PathLike | None = None) -> dict[str, Any]:
    """{"commit": full sha, "dirty": bool} of the checkout holding ``where`` (by default this package's own
    source, so a command run from any folder names the code it ran; an installed, non-editable copy is "not
    a git checkout"), or {"commit": "not a git checkout", "dirty": None}. Untracked files do not make a
    tree dirty: results/ and data/ are ignored, and a new untracked file changes no tracked code."""
    cwd = str(where or CODE_DIR)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=20)
        if sha.returncode != 0:
            return {"commit": NOT_GIT, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):  # no git program, or a hung file system
        return {"commit": NOT_GIT, "dirty": None}
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """{package: installed version, or None when it is not installed}; python's own version first. The
    same in every process (torch-free or not): the tables group rows by it."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def torch_build() -> str | None:
    """``torch.__version__`` (e.g. 2.14.1+cu130: the build tag the wheel metadata leaves out) when the process
    already imported torch; else None."""
    torch = sys.modules.get("torch")
    return None if torch is None else str(getattr(torch, "__version__", "")) or None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def gpu_name() -> str | None:
    """The first CUDA device's name when the process already imported torch and CUDA is there; else None
    (importing torch here would cost seconds in the torch-free commands)."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # noqa: BLE001 (a broken driver must not fail a record)
        return None
    return None


def hostname_opted_in() -> bool:
    return os.environ.get(HOSTNAME_ENV, "").strip().lower() in ("1", "true", "yes")


def collect(where: str | os.PathLike | None = None, with_date: bool = True) -> dict[str, Any]:
    """The provenance object of a record written now (``with_date``: with the UTC time of writing)."""
    info: dict[str, Any] = {
        "git": git_state(where),
        "versions": package_versions(),
        "cpu": cpu_model(),
        "gpu": gpu_name(),
    }
    if torch_build() is not None:  # the training and export processes: the CUDA build of their torch
        info["torch_build"] = torch_build()
    if with_date:
        info["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if hostname_opted_in():
        info["hostname"] = platform.node()
    return info


def short_commit(info: dict[str, Any] | None) -> str:
    """"abc1234" (+ " (dirty)"), "not a git checkout", or "unknown" for a record without provenance."""
    if not info:
        return UNKNOWN
    git = info.get("git") or {}
    commit = str(git.get("commit") or UNKNOWN)
    if commit in (NOT_GIT, UNKNOWN):
        return commit
    return commit[:7] + (" (dirty)" if git.get("dirty") else "")


def code_key(info: dict[str, Any] | None) -> tuple[str, str]:
    """(short commit, torch version): what a footnote groups rows by."""
    torch = ((info or {}).get("versions") or {}).get("torch") or UNKNOWN
    return short_commit(info), str(torch) if info else UNKNOWN
