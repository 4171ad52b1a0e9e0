"""Every script in examples/ runs as ``python examples/NAME.py`` and prints what it promises.

Each runs in a subprocess, in a temporary folder, with ``CEREBELUM_DB`` pointing to a
fresh SQLite file there, so the examples never touch a store of their own folder.
The documentation's snippets are held to the same standard: the ```python blocks of
each page under docs/ (but cli.md, which shows shell commands) are pasted, in order,
into ``python -m asyncio`` (fed on stdin, as a reader pastes them) in a fresh folder
with the default store, and then pasted again in the same folder: both times nothing
may go wrong.

A new example is picked up by the glob: it must exit 0, write nothing to stderr (it
runs with ``-W error``), and have an entry in ``EXPECTED`` saying what it must print.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"

EXPECTED: dict[str, list[str]] = {
    "quickstart": ["completed {'sent': 'consent', 'to': '123@example.com'}"],
    "order_saga": [
        "-> completed: {'status': 'shipped', 'order': 'A-100'",
        "release reservation R-A-101",
        "-> completed: {'status': 'cancelled', 'order': 'A-101', 'reason': 'payment_declined'}",
        "charge attempt 1: the gateway is busy",
        "charge attempt 2: ok",
        "-> failed: failed_by_rule at step 'charge_card': fraud suspected",
    ],
    "approval_flow": [
        "-> {'paid': 120, 'approved_by': 'bob'}",
        "-> {'paid': 0, 'rejected': 'not a business expense'}",
        "-> {'paid': 0, 'escalated': True}",
        "manager=timed out",
    ],
    "parallel_fanout": [
        "completed in",
        "'approved': True}",
        "the three checks ran side by side",
    ],
    "code_subscription": [
        "2030-01-31  charge ann 9.99 EUR for month 1 (attempt 1)",
        "gateway error, will retry",
        "for month 2 (attempt 2)",
        "-> {'customer': 'ann', 'months_paid': 3, 'cancelled': None}",
        "-> {'customer': 'bob', 'months_paid': 1, 'cancelled': 'too expensive'}",
    ],
    "code_children": [
        "nightly import completed: {'files': 2, 'rows': 5, 'failed': ['broken.csv']}",
        ".2   import_file    failed",
        ".3   import_report  completed",
    ],
    "retries_and_idempotency": [
        "provider calls: 2, charges made: 1",
        "CardRejected: card 'rejected' refused by the issuer",
        "after 1 attempt(s)",
        "'charged': True",
        "provider calls: 5, charges made: 2",
    ],
    "remote_workers": [
        "it waits for the manager; approving",
        "-> completed: {'emailed': 'R-",
        "'amount': 120}",
        "look_up_order   ran on the worker of queue 'default'",
        "refund_card     ran on the worker of queue 'payments'",
        "email_customer  ran on the worker of queue 'default'",
    ],
    "crash_recovery": [
        "with SIGKILL during 'upload'",
        "after the restart: completed, output '1000 rows uploaded'",
        "export_rows#1, upload#1, upload#2, notify#1",
        "second process  upload attempt 2 key export-2030-01-01:upload done",
    ],
}


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def test_the_expected_examples_exist():
    missing = set(EXPECTED) - {p.stem for p in _examples()}
    assert not missing, f"examples/ has no {sorted(missing)}"


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.stem)
def test_the_example_runs_and_prints_what_it_promises(path, tmp_path):
    env = {**os.environ, "CEREBELUM_DB": f"sqlite:///{tmp_path / 'examples.db'}"}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, f"{path.name} exited {proc.returncode}:\n{proc.stderr}"
    assert proc.stderr == "", f"{path.name} wrote to stderr:\n{proc.stderr}"
    assert path.stem in EXPECTED, f"add what {path.name} must print to EXPECTED in {__file__}"
    for expected in EXPECTED[path.stem]:
        assert expected in proc.stdout, f"{path.name}: {expected!r} not in:\n{proc.stdout}"


# What the asyncio REPL writes to stderr on its own: a banner, prompts, and goodbye.
REPL_NOISE = re.compile(
    r"asyncio REPL \d|Use \"await\" directly|Type \"help\"|import asyncio$|exiting asyncio REPL"
)
DONE = "-- every snippet was pasted --"


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if p.name != "cli.md")


def _paste(page: Path, folder: Path) -> str:
    """Paste the page's snippets into ``python -m asyncio`` in ``folder``; what went wrong."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    env = {k: v for k, v in os.environ.items() if k != "CEREBELUM_DB"}  # ./cerebelum.db
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-m", "asyncio"], cwd=folder, env=env,
        input="".join(b + "\n" for b in blocks) + f"print({DONE!r})\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    said = [re.sub(r"^(?:(?:>>>|\.\.\.) ?)+", "", line) for line in proc.stderr.splitlines()]
    wrong = [line for line in said if line.strip() and not REPL_NOISE.search(line)]
    if proc.returncode != 0 or DONE not in proc.stdout or wrong:
        return f"exit {proc.returncode}, stderr:\n" + "\n".join(wrong or said)
    return ""


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_a_docs_page_pasted_into_the_asyncio_repl_runs_and_runs_again(page, tmp_path):
    # the 3.11 REPL ends a block at a blank line, and a reader who pastes a page twice
    # finds the first paste's executions in ./cerebelum.db
    for paste in ("first", "second"):
        wrong = _paste(page, tmp_path)
        assert not wrong, f"{page.name}, pasted a {paste} time into python -m asyncio: {wrong}"
