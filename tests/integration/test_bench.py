"""``python -m bench --smoke``: the harness runs, checks its workflows and reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def test_the_smoke_run_measures_every_workload_on_sqlite(tmp_path):
    """Cerebelum only, on SQLite: no peer and no PostgreSQL needed."""
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


def test_the_smoke_run_leaves_the_committed_results_alone():
    results = ROOT / "bench" / "results"
    before = {p.name: p.read_bytes() for p in results.iterdir()}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--systems", "cerebelum", "--stores", "sqlite",
         "--workloads", "latency"],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before
    written = Path(re.search(r"^results in (.+)$", proc.stderr, re.M).group(1))
    assert (
        written != results and json.loads((written / "latest.json").read_text())["mode"] == "smoke"
    )
    shutil.rmtree(written)


def test_a_missing_peer_is_a_skipped_row_and_a_failure_is_shown():
    from bench import report

    records = [
        {"system": "Cerebelum graph", "store": "sqlite", "workload": "throughput",
         "p50_ms": 2.0, "p99_ms": 3.0, "workflows_per_s": 2000.0, "steps_per_s": 4000.0},
        {"system": "DBOS", "store": "sqlite", "workload": "throughput",
         "p50_ms": 20.0, "p99_ms": 30.0, "workflows_per_s": 100.0, "steps_per_s": 200.0},
        {"system": "Temporal", "store": "dev-server", "workload": "*", "skipped": "not installed"},
        {"system": "DBOS", "store": "postgres", "workload": "*", "error": "boom"},
    ]  # fmt: skip
    meta = {"date": "d", "machine": "m", "mode": "smoke", "versions": {}}
    table = report.markdown(meta, records)
    assert "| Temporal (dev-server) | * | skipped (not installed) |" in table
    assert "| DBOS (postgres) | * | FAILED: boom |" in table
    assert "| 20.0x | 10.0x |" in table  # Cerebelum's throughput 20x DBOS's; DBOS's p50 10x ours


def test_opening_a_store_of_sleeping_workflows_is_measured_and_the_due_ones_wake(tmp_path):
    """``python -m bench.open_store`` with a tiny count: the report's shape, and the engine
    that opened the store finished the executions whose timer was due, and only those."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.open_store", "--count", "2000", "--idle", "0.5",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "open_store_sqlite_2000.json").read_text())
    assert report["store"] == "sqlite" and report["count"] == 2000 and report["ok"]
    for which in ("empty", "full"):
        got = report[which]
        assert got["open_s"] > 0
        assert 0 < got["rss_before_open_mb"] <= got["peak_rss_after_open_mb"]
        assert got["idle_cpu_pct"] >= 0 and got["due_timers_s"] >= 0
    full = report["full"]
    assert len(full["woken"]) == 10
    for eid, result in full["woken"].items():  # each returns its input: "sleeper-0000042" -> 42
        assert result == {"status": "completed", "output": int(eid.rsplit("-", 1)[1])}
    assert full["asleep"] and set(full["asleep"].values()) == {"waiting"}
    assert proc.stdout.startswith("| sqlite | 2,000 |")
