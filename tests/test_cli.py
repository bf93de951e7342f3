"""The `aclnet` dispatcher: help, unknown commands, and user errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

from aclnet_kd.cli import SUBCOMMANDS, main


def test_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "aclnet_kd.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "complexity" in result.stdout
