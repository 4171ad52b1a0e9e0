"""The README's graph quickstart runs as written (in the asyncio REPL it points to)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_quickstart_runs_as_written(tmp_path):
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "asyncio"], input=block + "\n", capture_output=True, text=True,
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert "completed {'sent': 'consent', 'to': '123@example.com'}" in proc.stdout, proc.stderr
    assert (tmp_path / "cerebelum.db").exists()  # the embedded default store


def test_the_readme_names_the_commands_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = "python -m pip install -e '.[test]' && python -m pytest"
    assert test_command in README.read_text() and test_command in ci
