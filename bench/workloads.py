"""The workloads, the same for every system: trivial steps, so the engine's own cost shows.

Every workflow's output is checked; a wrong one raises and the run fails.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

#: Full counts (``--quick`` divides some of them; ``--smoke`` makes them tiny).
FULL = {"latency": 200, "throughput": 2000, "concurrency": 100, "chain": 200,
        "chain_length": 10, "fanout": 500, "recovery": 1000}  # fmt: skip
QUICK = {**FULL, "latency": 100, "throughput": 1000, "chain": 100, "recovery": 300}
SMOKE = {"latency": 10, "throughput": 40, "concurrency": 10, "chain": 5,
         "chain_length": 10, "fanout": 20, "recovery": 20}  # fmt: skip

WORKLOADS = ("latency", "throughput", "chain", "fanout", "recovery")


def expected(kind: str, n: int) -> Any:
    """What every system's workflow returns for input ``n``."""
    if kind == "two":
        return n + 2
    if kind == "chain":
        return n + 10
    return sum(range(n))  # fanout: each of n parallel steps returns its index; the join sums


@dataclass
class Measure:
    workload: str
    workflows: int
    steps: int
    seconds: float
    latencies: list[float]

    def record(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 3) if lat else None

        return {
            "workload": self.workload,
            "workflows": self.workflows,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "workflows_per_s": round(self.workflows / self.seconds, 1),
            "steps_per_s": round(self.steps / self.seconds, 1),
            "seconds": round(self.seconds, 3),
        }


async def _timed(system: Any, kind: str, n: int, latencies: list[float]) -> None:
    t = time.perf_counter()
    out = await system.run(kind, n)
    latencies.append(time.perf_counter() - t)
    if out != expected(kind, n):
        raise AssertionError(f"{kind}({n}) returned {out!r}, expected {expected(kind, n)!r}")


async def latency(system: Any, counts: dict[str, int]) -> Measure:
    for i in range(min(20, counts["latency"])):  # warm up
        await _timed(system, "two", i, [])
    lat: list[float] = []
    t = time.perf_counter()
    for i in range(counts["latency"]):
        await _timed(system, "two", i, lat)
    return Measure("latency", len(lat), 2 * len(lat), time.perf_counter() - t, lat)


async def _many(system: Any, kind: str, total: int, concurrency: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await _timed(system, kind, i, lat)

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return time.perf_counter() - t, lat


async def throughput(system: Any, counts: dict[str, int]) -> Measure:
    n = counts["throughput"]
    seconds, lat = await _many(system, "two", n, counts["concurrency"])
    return Measure("throughput", n, 2 * n, seconds, lat)


async def chain(system: Any, counts: dict[str, int]) -> Measure:
    n = counts["chain"]
    seconds, lat = await _many(system, "chain", n, counts["concurrency"])
    return Measure("chain", n, counts["chain_length"] * n, seconds, lat)


async def fanout(system: Any, counts: dict[str, int]) -> Measure:
    lat: list[float] = []
    t = time.perf_counter()
    await _timed(system, "fanout", counts["fanout"], lat)
    return Measure("fanout", 1, counts["fanout"] + 1, time.perf_counter() - t, lat)


RUNNERS = {"latency": latency, "throughput": throughput, "chain": chain, "fanout": fanout}
