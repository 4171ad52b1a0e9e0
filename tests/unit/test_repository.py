"""What running the engine leaves in a checkout is ignored by git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="no git")
@pytest.mark.parametrize(
    "path",
    ["cerebelum.db", "cerebelum.db.lock", "cerebelum.db-wal", "examples/shop.db.lock", "x.db-shm"],
)
def test_the_files_an_embedded_store_makes_are_ignored(path):
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    assert ignored.returncode == 0, f"git does not ignore {path}"
