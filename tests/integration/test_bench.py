"""``python -m bench --smoke``: the harness runs, checks its workflows and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def test_the_smoke_run_measures_every_workload_on_sqlite(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--systems", "cerebelum", "--stores", "sqlite",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    got = {(r["system"], r["workload"]): r for r in report["records"]}
    for system in ("Cerebelum graph", "Cerebelum code"):
        for workload in ("latency", "throughput", "chain", "fanout", "recovery"):
            record = got[(system, workload)]
            assert "error" not in record, record
            assert record["workflows_per_s"] > 0
        assert got[(system, "recovery")]["completed_step_ran_again"] == 0
        assert got[(system, "latency")]["p50_ms"] <= got[(system, "latency")]["p99_ms"]
    assert "| Cerebelum graph (sqlite) | throughput |" in (tmp_path / "latest.md").read_text()
