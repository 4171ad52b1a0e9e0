"""``python -m bench.open_store``: opening a store full of sleeping code workflows.

An engine that opens a store claims only the executions with work in flight; those
that only wait (here: a 30-day ``sleep``) stay in the store until their timer falls
due. This measures what that costs: the wall-clock time of ``await engine.open()`` and
the process's RSS, on an empty store and on one holding ``--count`` sleeping code
workflows (default 1,000,000 on SQLite, 200,000 on PostgreSQL).

A command of its own rather than a workload of ``python -m bench``: that one compares
systems workload by workload, each run in a process with a fresh database; this one is
Cerebelum's alone, spends minutes building one large store, and opens it in a process
of its own so that the RSS measured is the engine's and nothing else's.

How the store is built: ONE real ``sleeper`` execution runs on a real engine until it
waits; its executions row, its history and its timer are read back, and N-1 copies
(new ids, their own input) are written with the store's own ``commit()``, 5,000 per
transaction, so the store holds exactly what the engine writes, at a fraction of the
time. ``--wake`` of the copies (10) are written as if started 30 days earlier: their
timer is due when the engine opens. The engine must wake, replay and finish those
within 30 s (each returns its input), while a sample of the others is still waiting.

(Moving the due time of a copy in the ``timers`` table alone would not do: the
engine fires a timer only if the time in the table is the one in the history's
``TimerStarted``, so a copy that wakes early is written with both moved, consistently.)

Writes ``results/open_store_<store>_<count>.json`` (``--out`` to put it elsewhere; a run with
another count than the default goes to a temporary folder unless ``--out`` is given,
so a check never replaces the committed figures) and prints a Markdown row for
``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

import cerebelum
from cerebelum import Engine, activity, workflow
from cerebelum import events as ev
from cerebelum.serde import encode
from cerebelum.store import ExecutionRecord, Write, open_store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_COUNT = {"sqlite": 1_000_000, "postgres": 200_000}
BATCH = 5_000
SLEEP_DAYS = 30
WAKE_TIMEOUT = 30.0


async def stamp() -> str:
    return "ready"


@workflow(name="bench_sleeper")
async def sleeper(n: int) -> int:
    await activity(stamp)
    await cerebelum.sleep(days=SLEEP_DAYS)
    return n


# --- measuring: in a process of its own --------------------------------------------------


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def rss_mb() -> float:
    """The process's resident set now (``VmRSS``), in MB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The most the process has had resident (``VmHWM``), in MB.

    Not ``getrusage().ru_maxrss``: Linux carries that across ``exec`` from the process
    that forked, so here it would show the building process's peak, not the engine's.
    """
    return _status_mb("VmHWM")


async def idle_cost(engine: Engine, seconds: float) -> dict[str, Any]:
    """What the open engine costs while everything sleeps: its CPU share over ``seconds``,
    and one call of each query its poller makes every ``poll_interval`` (0.2 s)."""
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    out: dict[str, Any] = {"idle_cpu_pct": round(100 * (time.process_time() - cpu) / seconds, 1)}
    store, now, runnable = engine.store, time.time(), {sleeper.name: sleeper.version}
    polls = {
        "due_timers": lambda: store.due_timers(engine.id, now, engine.lease, now, 500, runnable),
        "receive": lambda: store.receive(engine.id, now, engine.lease, 100, runnable),
        "drop_stale": lambda: store.drop_stale(1000),
    }
    for name, query in polls.items():
        t = time.perf_counter()
        await query()
        out[f"{name}_s"] = round(time.perf_counter() - t, 4)
    return out


async def measure(
    url: str, woken: dict[str, int], asleep: list[str], idle: float
) -> dict[str, Any]:
    """Open an engine on ``url``; time it; check that ``woken`` finish and ``asleep`` wait."""
    out: dict[str, Any] = {"rss_before_open_mb": rss_mb(), "peak_rss_before_open_mb": peak_rss_mb()}
    engine = Engine(url, workflows=[sleeper])
    t = time.perf_counter()
    await engine.open()
    out["open_s"] = round(time.perf_counter() - t, 3)
    out["rss_after_open_mb"] = rss_mb()
    out["peak_rss_after_open_mb"] = peak_rss_mb()
    try:
        t = time.perf_counter()
        results = await asyncio.gather(
            *(engine.result(eid, timeout=WAKE_TIMEOUT) for eid in woken),
            return_exceptions=True,
        )
        out["woke_s"] = round(time.perf_counter() - t, 3)
        out["woken"] = {
            eid: (
                {"status": r.status, "output": r.output}
                if isinstance(r, cerebelum.ExecutionResult)
                else {"error": f"{type(r).__name__}: {r}"}
            )
            for eid, r in zip(woken, results, strict=True)
        }
        out["woken_ok"] = all(
            r.get("status") == "completed" and r.get("output") == woken[eid]
            for eid, r in out["woken"].items()
        )
        out["asleep"] = {eid: (await engine.status(eid)).status for eid in asleep}
        out["asleep_ok"] = all(s == "waiting" for s in out["asleep"].values())
        out["rss_after_wake_mb"] = rss_mb()
        out["peak_rss_mb"] = peak_rss_mb()
        out.update(await idle_cost(engine, idle))
    finally:
        t = time.perf_counter()
        await engine.close()
        out["close_s"] = round(time.perf_counter() - t, 3)
    return out


def measure_apart(
    url: str, woken: dict[str, int], asleep: list[str], idle: float
) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process: its RSS is the engine's alone."""
    spec = json.dumps({"url": url, "woken": woken, "asleep": asleep, "idle": idle})
    proc = subprocess.run(
        [sys.executable, "-m", "bench.open_store", "--measure", spec],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the measuring process failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


# --- building: one real execution, then copies of its rows -------------------------------


async def template(url: str) -> tuple[ExecutionRecord, list[ev.Event], list[tuple[str, float]]]:
    """Run one ``sleeper`` until it waits; return its row, its history and its timers."""
    async with Engine(url, workflows=[sleeper]) as engine:
        handle = await engine.start(sleeper, 0)
        async with asyncio.timeout(30):
            while (await engine.status(handle.id)).status != "waiting":
                await asyncio.sleep(0.02)
    async with open_store(url) as store:  # read back what the engine left, after it closed
        rec = await store.get(handle.id)
        history = await store.history(handle.id)
        assert rec is not None and rec.status == "waiting" and rec.owner is None, rec
        timers = _pending_timers(history)
        stored = await store.due_timers(
            "check", time.time(), 0.0, math.inf, 10, {sleeper.name: sleeper.version}
        )
        assert [(t, f) for _, t, f in stored] == timers, (timers, "not in the store")
    return rec, history, timers


def _pending_timers(history: list[ev.Event]) -> list[tuple[str, float]]:
    started = {e.timer: e.fire_at for e in history if isinstance(e, ev.TimerStarted)}
    for e in history:
        if isinstance(e, ev.TimerFired):
            started.pop(e.timer, None)
    return list(started.items())


def copy(
    rec: ExecutionRecord, history: list[ev.Event], timers: list[tuple[str, float]],
    eid: str, n: int, earlier: float,
) -> Write:  # fmt: skip
    """The write that creates a copy of the template: id ``eid``, input ``n``, every time
    ``earlier`` seconds before the template's."""
    inputs = encode({"args": [n], "kwargs": {}}, "a copy's inputs")
    events: list[ev.Event] = []
    for e in history:
        fields: dict[str, Any] = {"at": e.at - earlier}
        if isinstance(e, ev.ExecutionStarted):
            fields["inputs"] = ev.Raw(inputs)
        elif isinstance(e, ev.TimerStarted):
            fields["fire_at"] = e.fire_at - earlier
        events.append(msgspec.structs.replace(e, **fields))
    row = replace(rec, id=eid, inputs=inputs, created_at=rec.created_at - earlier,
                  updated_at=rec.updated_at - earlier)  # fmt: skip
    return Write(eid, events, create=row, timers_set=[(t, f - earlier) for t, f in timers])


def copy_ids(count: int, wake: int) -> tuple[dict[str, int], list[str]]:
    """The ids (and inputs) of the copies that wake, spread over the store, and some that sleep."""
    step = max(1, (count - 1) // max(wake, 1))
    woken = {_id(i): i for i in range(1, count, step)[:wake]}
    asleep = [_id(i) for i in range(2, count, step)[:wake] if _id(i) not in woken]
    return woken, asleep


def _id(i: int) -> str:
    return f"sleeper-{i:07d}"


async def build(url: str, count: int, wake: int) -> dict[str, Any]:
    """Fill the store at ``url`` with ``count`` sleeping executions (the template and copies)."""
    t = time.perf_counter()
    rec, history, timers = await template(url)
    woken, _ = copy_ids(count, wake)
    # the woken ones started SLEEP_DAYS earlier, so that their sleep ended as the build did
    due_in = max(f for _, f in timers) - time.time()
    async with open_store(url) as store:
        batch: list[Write] = []
        for i in range(1, count):
            eid = _id(i)
            batch.append(copy(rec, history, timers, eid, i, due_in if eid in woken else 0.0))
            if len(batch) == BATCH or i == count - 1:
                conflicts = await store.commit(batch)
                assert not conflicts, f"{len(conflicts)} copies existed already"
                batch = []
                if i % 100_000 < BATCH:
                    print(f"  {i + 1:,} of {count:,} written", file=sys.stderr, flush=True)
        sample = _id(count - 1)
        got = await store.history(sample)
        assert [type(e) for e in got] == [type(e) for e in history], got
    return {"template_events": len(history), "build_s": round(time.perf_counter() - t, 1)}


# --- the command ------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.open_store", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--count", type=int, help="sleeping executions [default: 1,000,000 on "
                   "SQLite, 200,000 on PostgreSQL]")  # fmt: skip
    p.add_argument("--wake", type=int, default=10, help="of them, how many wake at open")
    p.add_argument("--idle", type=float, default=5.0, help="seconds the open engine is "
                   "watched idle, for its CPU share [default: 5]")  # fmt: skip
    p.add_argument("--out", help="where the JSON goes [default: results/, or a temporary "
                   "folder when --count is not the default]")  # fmt: skip
    p.add_argument("--measure", help=argparse.SUPPRESS)  # the measuring process's own spec
    args = p.parse_args()
    if args.count is None:
        args.count = DEFAULT_COUNT[args.store]
    if args.count < 2 or not 0 < args.wake < args.count // 2:
        p.error("--count must be at least 2 and --wake between 1 and half of it")
    return args


def meta() -> dict[str, Any]:
    from . import __main__ as bench  # the machine and versions, as the main benchmark says them

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "versions": bench.versions(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from . import __main__ as bench

    report: dict[str, Any] = {**meta(), "store": args.store, "count": args.count}
    with bench.database(args.store, "open_empty") as url:
        asyncio.run(_schema_only(url))  # the baseline: a store with its tables, no executions
        report["empty"] = measure_apart(url, {}, [], args.idle)
        print(f"empty store: opened in {report['empty']['open_s']} s", file=sys.stderr)
    with bench.database(args.store, "open_full") as url:
        print(f"building {args.count:,} sleeping executions ...", file=sys.stderr, flush=True)
        report["build"] = asyncio.run(build(url, args.count, args.wake))
        if args.store == "sqlite":
            report["build"]["file_mb"] = round(os.path.getsize(url) / 2**20, 1)
        woken, asleep = copy_ids(args.count, args.wake)
        report["full"] = measure_apart(url, woken, asleep, args.idle)
    full, empty = report["full"], report["empty"]
    report["ok"] = full["woken_ok"] and full["asleep_ok"]
    report["open_ratio"] = round(full["open_s"] / max(empty["open_s"], 1e-6), 2)
    return report


async def _schema_only(url: str) -> None:
    async with open_store(url):
        pass


def row(report: dict[str, Any]) -> str:
    """The report as a row of the table in bench/README.md."""
    f, e = report["full"], report["empty"]
    woke = sum(r.get("status") == "completed" for r in f["woken"].values())
    return (
        f"| {report['store']} | {report['count']:,} | {f['open_s']} | {e['open_s']} "
        f"| {f['rss_after_open_mb']} | {e['rss_after_open_mb']} | {f['peak_rss_mb']} "
        f"| {woke} of {len(f['woken'])} in {f['woke_s']} s | {f['idle_cpu_pct']} "
        f"| {f['due_timers_s']} / {f['receive_s']} | {report['build']['build_s']} |"
    )


def main() -> int:
    args = parse()
    if args.measure:
        spec = json.loads(args.measure)
        print(json.dumps(asyncio.run(measure(**spec))))
        return 0
    report = run(args)
    if args.out:
        out = Path(args.out)
    elif args.count != DEFAULT_COUNT[args.store]:
        out = Path(tempfile.mkdtemp(prefix="cerebelum-bench-open-"))
    else:
        out = HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"open_store_{args.store}_{args.count}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"results in {path}", file=sys.stderr)
    print(row(report))
    if not report["ok"]:
        print("FAILED: the woken executions did not all complete, or others woke", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
