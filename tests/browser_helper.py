"""Headless Debian Chromium for the tests: the rendered DOM of a local page, and the requests it made.

Skips with a named reason when chromium is not installed, unless ACLNET_REQUIRE_CHROMIUM=1 (.ci/run sets it,
as ACLNET_REQUIRE_SLURM for the scale-out tests): then a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND"]  # no name resolves: nothing could reach the network anyway
BROWSER_ORIGIN = "not an origin"  # the initiator of the browser's own requests (update checks), not the page's


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("ACLNET_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is not installed and ACLNET_REQUIRE_CHROMIUM=1 (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    return path


def dump_dom(page: Path, work: Path, budget_ms: int = 0) -> tuple[str, list[str]]:
    """(the rendered DOM of ``page``, the URLs the page itself requested), from a fresh browser profile."""
    work.mkdir(parents=True, exist_ok=True)
    netlog = work / "netlog.json"
    command = [chromium(), *FLAGS, f"--user-data-dir={work / 'profile'}", f"--log-net-log={netlog}"]
    if budget_ms:
        command.append(f"--virtual-time-budget={budget_ms}")  # let a script-driven page render
    proc = subprocess.run([*command, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout, proc.stderr[-2000:]
    return proc.stdout, page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    """URLs of the requests the page started (the browser's own background requests left out)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "url" in e.get("params", {}) and e["params"].get("initiator") != BROWSER_ORIGIN]


class Dom(HTMLParser):
    """The parts of a DOM the tests read: text, <img> attributes, and the cell texts of each table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.metas: list[dict[str, str]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attrs)
        if tag == "meta":
            self.metas.append(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.links.append(attrs[key])
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())
