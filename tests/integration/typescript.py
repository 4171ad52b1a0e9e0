"""The TypeScript worker package (workers/typescript), built for the tests that run it.

``typescript_worker()`` gives the built package's entry point (``typescript_example()``
the example of examples/typescript, built on it), running ``npm ci`` and
``npm run build`` first when the package has no ``node_modules`` or its ``dist`` is
older than its sources (``.ci/run`` does both before the tests). Without Node.js the
tests that need it are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "workers" / "typescript"


def _npm(package: Path, *args: str) -> None:
    npm = shutil.which("npm")
    assert npm is not None
    proc = subprocess.run([npm, *args], cwd=package, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"npm {' '.join(args)} in {package} failed:\n{proc.stderr}"


def _stale(package: Path, built: Path) -> bool:
    if not built.exists():
        return True
    newest = max(p.stat().st_mtime for p in (package / "src").rglob("*.ts"))
    return newest > built.stat().st_mtime


def node() -> str:
    """The ``node`` executable; the test is skipped (failed under CI=true) without one."""
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and Node.js (node, npm) is not on PATH")
        pytest.skip("Node.js (node, npm) is not on PATH")
    return found


def typescript_worker() -> Path:
    """The built package's entry point, built first if needed."""
    node()
    if not (PACKAGE / "node_modules").exists():
        _npm(PACKAGE, "ci", "--no-audit", "--no-fund")
    entry = PACKAGE / "dist" / "index.js"
    if _stale(PACKAGE, entry):
        _npm(PACKAGE, "run", "build")
    return entry


EXAMPLE = ROOT / "examples" / "typescript"


def typescript_example() -> Path:
    """examples/typescript, installed and built (after the package it depends on)."""
    typescript_worker()
    if not (EXAMPLE / "node_modules").exists():
        _npm(EXAMPLE, "ci", "--no-audit", "--no-fund")
    built = EXAMPLE / "dist" / "worker.js"
    if not built.exists() or (EXAMPLE / "worker.ts").stat().st_mtime > built.stat().st_mtime:
        _npm(EXAMPLE, "run", "build")
    return EXAMPLE
