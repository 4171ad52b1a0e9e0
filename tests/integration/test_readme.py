"""The README's graph quickstart runs as written (in the asyncio REPL it points to)."""

from __future__ import annotations

import importlib.resources
import re
import subprocess
import sys
import tomllib
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
    checks = [line.strip() for line in ci.splitlines()]
    paths = "cerebelum tests bench examples"
    assert f"python -m ruff check {paths}" in checks
    assert f"python -m ruff format --check {paths}" in checks
    assert any(line.startswith("python -m mypy") for line in checks)  # on what [tool.mypy] names
    assert "py312 -m pytest -q" in checks  # the other supported version
    extra = tomllib.loads((README.parent / "pyproject.toml").read_text())
    tools = {re.split(r"[<>=]", r)[0] for r in extra["project"]["optional-dependencies"]["test"]}
    assert {"ruff", "mypy"} <= tools  # the README's command installs what CI runs


def test_the_package_says_it_is_typed():
    assert (README.parent / "cerebelum" / "py.typed").is_file()
    assert importlib.resources.files("cerebelum").joinpath("py.typed").is_file()
