"""One system, one store, in a process of its own: ``python -m bench.worker SPEC``.

SPEC is JSON: system, flavour, store, db_url, workloads, counts. Prints one JSON
record per workload on stdout (its peak RSS included) and exits non-zero on a failure.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import resource
import sys
import traceback

from . import workloads


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def main(spec: dict) -> int:
    system = importlib.import_module(f"bench.systems.{spec['system']}")
    counts = spec["counts"]
    failed = 0
    async with system.session(spec["flavour"], spec["db_url"], counts) as session:
        for name in spec["workloads"]:
            try:
                record = (await workloads.RUNNERS[name](session, counts)).record()
            except Exception as exc:
                traceback.print_exc()
                record = {"workload": name, "error": f"{type(exc).__name__}: {exc}"}
                failed += 1
            record["peak_rss_mb"] = peak_rss_mb()
            record.update(getattr(session, "extra", dict)())
            print(json.dumps(record), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(sys.argv[1]))))
