"""Tell a dead Snakemake lock from a live one, so that the same command carries on after a kill.

`kill -9` of a run leaves Snakemake's directory lock behind, and the next `snakemake` (or `make run`) stops
with a LockException until someone runs `snakemake --unlock`. The Snakefile asks :func:`live_holders` at
parse time, before Snakemake takes its lock: when nothing of an earlier run still runs in this folder (no
`snakemake` process, no `aclnet` job it started), the lock is dead and `snakemake --unlock` (Snakemake's
own command) lifts it. A live run is left alone, so two runs at once in one folder are still refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

# Programs whose presence in a folder means a run is still going there: Snakemake itself, and the jobs it
# starts (an orphaned training keeps writing its outputs even after its Snakemake is gone).
PROGRAMS = ("snakemake", "aclnet", "aclnet_kd.cli", "torchrun")


def _ancestors() -> set[int]:
    """This process and its parents: the run asking must not count itself (nor `make`, its shell...)."""
    me = psutil.Process()
    return {me.pid} | {p.pid for p in me.parents()}


def _runs(cmdline: list[str]) -> str | None:
    """The program of ``PROGRAMS`` a command line runs (by script name or `-m module`), else None."""
    for arg in cmdline[:3]:
        name = Path(arg).name
        if name in PROGRAMS:
            return name
    if "-m" in cmdline[:3]:
        module = cmdline[cmdline.index("-m") + 1] if cmdline.index("-m") + 1 < len(cmdline) else ""
        if module in PROGRAMS:
            return module
    return None


def live_holders(workdir: str | os.PathLike = ".") -> list[tuple[int, str]]:
    """(pid, program) of every process other than this one and its parents that runs a ``PROGRAMS`` entry
    with ``workdir`` as its working directory."""
    workdir = os.path.realpath(workdir)
    skip = _ancestors()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = proc.info
        if info["pid"] in skip or not info["cmdline"] or info["cwd"] is None:
            continue   # cwd is None for processes we may not inspect (other users): not ours
        program = _runs(info["cmdline"])
        if program and os.path.realpath(info["cwd"]) == workdir:
            found.append((info["pid"], program))
    return sorted(found)
