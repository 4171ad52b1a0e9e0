"""A nightly import: one child workflow per file, run side by side, then a report.

``child(wf, *args)`` starts another workflow as a child execution and waits for its
output. A child is an execution of its own (its own id, history and status, visible
in ``engine.list``), so a failure in one file is recorded there and reported to the
parent as a ``ChildFailedError`` it can catch. Children can be of either kind: here a
code workflow starts code children with ``asyncio.gather`` and then a graph child
that builds the report; a graph step can call ``child(...)`` the same way.

Cancelling a parent cancels its children.

Run it: ``python examples/code_children.py`` (uses ./cerebelum.db, or $CEREBELUM_DB).
"""

import asyncio

from cerebelum import ChildFailedError, Engine, activity, child, step, workflow

FILES = {
    "customers.csv": ["ann", "bob", "carl"],
    "orders.csv": ["A-100", "A-101"],
    "broken.csv": None,  # cannot be parsed
}


def parse(name):
    rows = FILES[name]
    if rows is None:
        raise ValueError(f"{name}: line 1: unexpected end of file")
    return rows


async def load(name, rows):
    await asyncio.sleep(0.05)  # writing to the warehouse
    return len(rows)


@workflow
async def import_file(name: str):
    rows = await activity(parse, name)
    loaded = await activity(load, name, rows)
    return {"file": name, "rows": loaded}


@step
async def summarize(context, inputs):
    ok = [r for r in inputs["results"] if "rows" in r]
    failed = [r["file"] for r in inputs["results"] if "error" in r]
    return {"files": len(ok), "rows": sum(r["rows"] for r in ok), "failed": failed}


@workflow
def import_report(wf):
    wf.timeline(summarize)


async def import_one(name):
    try:
        return await child(import_file, name)
    except ChildFailedError as exc:
        return {"file": name, "error": str(exc)}


@workflow
async def nightly_import(files: list):
    results = await asyncio.gather(*(import_one(name) for name in files))
    return await child(import_report, {"results": list(results)})


async def main():
    async with Engine() as engine:
        result = await engine.execute(nightly_import, list(FILES))
        print(f"nightly import {result.status}: {result.output}")
        print("its children:")
        children = await engine.list(workflow="import_file") + await engine.list(
            workflow="import_report"
        )
        for info in sorted(children, key=lambda i: i.id):
            if info.id.startswith(result.id + "."):
                what = info.output if info.status == "completed" else info.error.message
                print(
                    f"  {info.id[len(result.id) :]:<4} {info.workflow:<14} {info.status:<10} {what}"
                )


if __name__ == "__main__":
    asyncio.run(main())
