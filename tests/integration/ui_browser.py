"""A real ``cerebelum server`` with the UI's test workflows, a headless Chromium, and the
screenshots of docs/ui.md.

Chromium is Debian's (``apt-get install chromium``: /usr/bin/chromium), driven by
Playwright for Python; Playwright's own browser downloads are never used.

Regenerate the screenshots with::

    python -m tests.integration.ui_browser docs/ui
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .servers import ROOT, environment, running_server

CHROMIUM = "/usr/bin/chromium"
FLOWS = "tests.integration.ui_workflows"
NOTE = "<script>alert(1)</script>"


def ui_server(db: str, token: str | None = None, dispatch: str = "local") -> Any:
    """``cerebelum server`` on ``db`` with the UI's test workflows; its URL.

    Stopped with SIGTERM, it must exit 0 with no traceback, open event streams or not.
    """
    return running_server(db, token, module=FLOWS, dispatch=dispatch)


def start(url: str, workflow: str, eid: str, token: str | None = None, **body: object) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.post(f"{url}/v1/executions", json={"workflow": workflow, "id": eid, **body},
                        headers=headers, timeout=10)  # fmt: skip
    assert answer.status_code in (200, 201), answer.text


def settle(url: str, eid: str, status: str, token: str | None = None) -> None:
    """Wait until the execution has ``status``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 15
    while True:
        now = httpx.get(f"{url}/v1/executions/{eid}", headers=headers, timeout=10).json()["status"]
        if now == status:
            return
        assert time.monotonic() < deadline, f"{eid} is {now}, not {status}"
        time.sleep(0.05)


def run_examples(url: str, token: str | None = None) -> None:
    """One execution of each kind the pages show: completed, failed, waiting, code."""
    start(url, "ui_pipeline", "pipeline-1", token, input={"note": NOTE})
    start(url, "ui_broken", "broken-1", token, input={})
    start(url, "ui_review", "review-1", token, input={"note": "please look"})
    start(url, "ui_code", "code-1", token, args=[3])
    for eid, status in (("pipeline-1", "completed"), ("broken-1", "failed"),
                        ("review-1", "waiting"), ("code-1", "completed")):  # fmt: skip
        settle(url, eid, status, token)


@contextmanager
def with_worker(url: str) -> Iterator[None]:
    """A ``cerebelum worker`` on the queues ``default`` and ``reports`` (not ``gpu``),
    killed at the end (it would finish a 30-second step first on SIGTERM)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cerebelum", "worker", FLOWS, "--server", url,
         "--queue", "default", "--queue", "reports", "--concurrency", "4"],
        cwd=ROOT, env=environment(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def run_on_workers(url: str) -> None:
    """A step a worker holds (leased), and a step no connected worker takes (queue gpu)."""
    start(url, "ui_slow", "slow-1", input={"seconds": 30})
    start(url, "ui_slow", "slow-2", input={"seconds": 0})
    deadline = time.monotonic() + 20
    while True:
        tasks = httpx.get(f"{url}/ui/api/workers", timeout=10).json()["tasks"]
        if {(t["name"], t["status"]) for t in tasks} >= {("ui_slow.slow_report", "leased"),
                                                         ("ui_slow.render", "ready")}:  # fmt: skip
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the tasks are {tasks}")
        time.sleep(0.1)


@contextmanager
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


PAGES = {
    "executions": "/",
    "execution-graph": "/executions/review-1",
    "execution-failed": "/executions/broken-1",
    "execution-code": "/executions/code-1",
    "approvals": "/approvals",
}


def screenshots(folder: Path, chromium: Any = None) -> list[Path]:
    """Run the examples on a fresh store and save a PNG of each main page into ``folder``
    (with ``chromium``, a Playwright browser already launched, or one of its own)."""
    import tempfile

    if chromium is None:
        with browser() as own:
            return screenshots(folder, own)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as tmp, ui_server(f"{tmp}/ui.db") as url:
        run_examples(url)
        context = chromium.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        for name, path in PAGES.items():
            page.goto(url + path)
            page.wait_for_selector("main table, main svg, main .empty")
            page.wait_for_timeout(300)
            target = folder / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            saved.append(target)
        context.close()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ui_server(f"{tmp}/w.db", dispatch="workers") as url,
        with_worker(url),
    ):
        run_on_workers(url)
        context = chromium.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        page.goto(url + "/workers")
        page.wait_for_selector("table.tasks")
        target = folder / "workers.png"
        page.screenshot(path=str(target), full_page=True)
        saved.append(target)
        context.close()
    return saved


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/ui")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    for path in screenshots(out):
        print(path)
