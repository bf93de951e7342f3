"""A dead Snakemake lock is told from a live one by the processes running in the folder (workflow/locks.py)."""

from __future__ import annotations

import subprocess
import sys
import time

from aclnet_kd.workflow.locks import live_holders


def _fake(program_dir, name: str, cwd) -> subprocess.Popen:
    """A process whose command line runs a script called ``name`` (as the `snakemake` console script does)."""
    script = program_dir / name
    script.write_text("import time\ntime.sleep(60)\n")
    return subprocess.Popen([sys.executable, str(script), "--cores", "2"], cwd=cwd)


def _until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_live_snakemake_and_job_in_the_folder_are_found(tmp_path):
    work, other, bin_dir = tmp_path / "work", tmp_path / "other", tmp_path / "bin"
    for folder in (work, other, bin_dir):
        folder.mkdir()
    assert live_holders(work) == []                            # nothing runs there: a lock would be dead
    procs = [_fake(bin_dir, "snakemake", work), _fake(bin_dir, "aclnet", work),
             _fake(bin_dir, "snakemake", other), _fake(bin_dir, "python-thing", work)]
    try:
        wanted = {(procs[0].pid, "snakemake"), (procs[1].pid, "aclnet")}
        assert _until(lambda: set(live_holders(work)) == wanted), live_holders(work)
        assert set(live_holders(other)) == {(procs[2].pid, "snakemake")}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert live_holders(work) == []                            # killed: the lock they left is dead


def test_the_asking_process_and_its_parents_do_not_count(tmp_path):
    """The Snakefile asks from inside snakemake itself: that process (and `make` above it) is not a holder."""
    code = ("import sys; from aclnet_kd.workflow.locks import live_holders; "
            "print(live_holders(sys.argv[1]))")
    script = tmp_path / "snakemake"
    script.write_text(code.replace("; ", "\n"))
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
