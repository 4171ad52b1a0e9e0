"""The results as a table (rich on a terminal, markdown in a file) and a throughput chart.

Ratios compare each row with Cerebelum graph workflows on the same store (Temporal's dev
server with Cerebelum on SQLite, the embedded store): how many times Cerebelum's
throughput is the row's, and how many times the row's p50 latency is Cerebelum's.
Above 1 means Cerebelum is ahead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEADERS = ["system (store)", "workload", "p50 ms", "p99 ms", "workflows/s", "steps/s",
           "peak RSS MB", "Cerebelum's throughput is", "row's p50 is Cerebelum's"]  # fmt: skip
BASE = "Cerebelum graph"


def _key(r: dict[str, Any]) -> str:
    return f"{r['system']} ({r['store']})"


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:,}"


def rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One row of cells per record, ratios included."""
    ours = {(r["store"], r["workload"]): r for r in records
            if r["system"] == BASE and "workflows_per_s" in r}  # fmt: skip
    out = []
    for r in records:
        if "skipped" in r or "error" in r:
            what = f"skipped ({r['skipped']})" if "skipped" in r else f"FAILED: {r['error']}"
            out.append([_key(r), r["workload"], what[:200]] + [""] * 6)
            continue
        base = ours.get(("sqlite" if r["store"] == "dev-server" else r["store"], r["workload"]))
        speed = slow = ""
        if base and r["system"] != BASE:
            if r.get("workflows_per_s"):
                speed = f"{base['workflows_per_s'] / r['workflows_per_s']:.1f}x"
            if r.get("p50_ms") and base.get("p50_ms"):
                slow = f"{r['p50_ms'] / base['p50_ms']:.1f}x"
        p50 = _num(r.get("p50_ms"))
        if r["workload"] == "recovery":
            p50 = f"{r['seconds']} s to finish"
            if "in_flight_at_kill" in r:
                p50 += f", {r['in_flight_at_kill']} open at the kill"
        rss = _num(r.get("peak_rss_mb"))
        if r.get("server_peak_rss_mb"):
            rss += f" + server {r['server_peak_rss_mb']:,}"
        out.append([_key(r), r["workload"], p50, _num(r.get("p99_ms")),
                    _num(r.get("workflows_per_s")), _num(r.get("steps_per_s")), rss, speed,
                    slow])  # fmt: skip
    return out


def heading(meta: dict[str, Any]) -> str:
    return (f"Run {meta['date']} on {meta['machine']}, {meta['mode']} counts; "
            + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))  # fmt: skip


def markdown(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = [heading(meta), "", "| " + " | ".join(HEADERS) + " |",
             "|---|---|" + "---:|" * (len(HEADERS) - 2)]  # fmt: skip
    lines += ["| " + " | ".join(cells) + " |" for cells in rows(records)]
    return "\n".join(lines) + "\n"


def show(meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Print the table: with rich when it is installed, else as markdown."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(markdown(meta, records))
        return
    table = Table(title=heading(meta), title_justify="left")
    for i, h in enumerate(HEADERS):
        table.add_column(h, justify="left" if i < 2 else "right")
    for cells in rows(records):
        failed = cells[2].startswith("FAILED")
        table.add_row(*cells, style="red" if failed else "dim" if "skipped" in cells[2] else None)
    Console(width=200).print(table)


def chart(records: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    got = [r for r in records if r.get("workload") == "throughput" and "workflows_per_s" in r]
    if not got:
        return
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(got) + 1.5))
    names = [_key(r) for r in got]
    values = [r["workflows_per_s"] for r in got]
    ax.barh(names, values, color=["#2a6f97" if "Cerebelum" in n else "#999999" for n in names])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("2-step workflows per second, 100 in flight (log scale; higher is better)")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
