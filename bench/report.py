"""The results as a markdown table (with ratios to Cerebelum) and a throughput chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _key(r: dict[str, Any]) -> str:
    return f"{r['system']} ({r['store']})"


def markdown(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = [
        f"Run {meta['date']} on {meta['machine']}, {meta['mode']} counts; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "| system (store) | workload | p50 ms | p99 ms | workflows/s | steps/s | peak RSS MB | "
        "Cerebelum graph's throughput is |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    ours = {(r["store"], r["workload"]): r for r in records
            if r["system"] == "Cerebelum graph" and "workflows_per_s" in r}  # fmt: skip
    for r in records:
        if "skipped" in r or "error" in r:
            what = f"skipped: {r['skipped']}" if "skipped" in r else f"FAILED: {r['error']}"
            lines.append(f"| {_key(r)} | {r['workload']} | {what} | | | | | |")
            continue
        base = ours.get(("sqlite" if r["store"] == "dev-server" else r["store"], r["workload"]))
        ratio = ""
        if base and r["system"] != "Cerebelum graph" and r.get("workflows_per_s"):
            ratio = f"{base['workflows_per_s'] / r['workflows_per_s']:.1f}x"
        cells = [r.get("p50_ms"), r.get("p99_ms"), r.get("workflows_per_s"),
                 r.get("steps_per_s"), r.get("peak_rss_mb")]  # fmt: skip
        shown = ["" if c is None else f"{c:,}" for c in cells]
        if r["workload"] == "recovery":
            shown[0] = f"{r['seconds']} s to finish"
        lines.append(f"| {_key(r)} | {r['workload']} | " + " | ".join(shown) + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def chart(records: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [r for r in records if r.get("workload") == "throughput" and "workflows_per_s" in r]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    names = [_key(r) for r in rows]
    values = [r["workflows_per_s"] for r in rows]
    ax.barh(names, values, color=["#2a6f97" if "Cerebelum" in n else "#999999" for n in names])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("2-step workflows per second, 100 in flight (log scale; higher is better)")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
