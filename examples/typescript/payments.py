"""A workflow whose steps alternate between Python and TypeScript.

This file is both the workflows' module and the script that runs them. Run as a
script, it starts (each a process of its own, on 127.0.0.1):

- ``cerebelum server examples/typescript/payments.py``: the engine;
- ``cerebelum worker examples/typescript/payments.py``: the Python steps, and the
  coroutine of the code workflow;
- ``node examples/typescript/dist/worker.js``: the TypeScript worker of worker.ts,
  which hosts the steps ``charge_card`` and ``send_receipt`` and the activity
  ``resize_image`` by name;

then a :class:`cerebelum.Client` runs two orders (one paid, one declined by the
TypeScript step, which routes it to a refund in Python) and a thumbnail, and prints
which language ran each step.

Run it: ``cd examples/typescript && npm ci && npm run build && python payments.py``
(uses ./cerebelum.db, or $CEREBELUM_DB; the worker package must be built first:
``cd workers/typescript && npm ci && npm run build``).
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cerebelum import Client, activity, remote_step, step, workflow

HERE = Path(__file__).resolve()


@step
async def reserve(context, inputs):
    return {"order": inputs["order"], "amount": inputs["amount"]}


# hosted by the TypeScript worker under this name; it receives `inputs` and `reserve`
charge_card = remote_step("charge_card", after=[reserve], queue="payments")


@step
async def ship(context, charge_card):
    return {"shipped": charge_card["order"], "paid": charge_card["charged"]}


send_receipt = remote_step("send_receipt", after=[ship], queue="payments")


@step
async def refund(context, reserve):
    return {"refunded": reserve["amount"], "order": reserve["order"]}


@workflow
def purchase(wf):
    wf.timeline(reserve >> charge_card >> ship >> send_receipt)
    wf.diverge(charge_card).when("payment_failed", target=refund)


@workflow
async def thumbnail(url: str) -> str:
    return await activity("resize_image", url, 300, queue="payments")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    with tempfile.TemporaryFile("w+") as logs:  # shown only if anything fails
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        db = os.environ.get("CEREBELUM_DB", "cerebelum.db")
        cli = [sys.executable, "-m", "cerebelum"]
        # this folder first (the workflows' module), then whatever the caller had
        path = [str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        commands = [
            [*cli, "server", str(HERE), "--db", db, "--port", str(port)],
            [*cli, "worker", str(HERE), "--server", url],
            ["node", str(HERE.parent / "dist" / "worker.js"), url],
        ]
        procs = [subprocess.Popen(c, stdout=logs, stderr=logs, env=env) for c in commands]
        try:
            await run_orders(url, python_pid=procs[1].pid)
        except BaseException:
            logs.seek(0)
            print(logs.read(), file=sys.stderr)
            raise
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)


async def run_orders(url: str, python_pid: int) -> None:
    async with Client(url) as client:
        deadline = time.monotonic() + 30
        while True:  # the server is up once it answers
            try:
                await client.list(limit=1)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        stamp = int(time.time() * 1000) % 100000
        for order, amount in ((f"A-{stamp}", 120), (f"B-{stamp}", 5000)):
            result = await client.execute("purchase", {"order": order, "amount": amount})
            print(f"{order} ({amount}) -> {result.status}: {result.output}")
            for e in await client.history(result.id):
                if e.type == "StepStarted":  # its worker: host:pid:random
                    language = (
                        "Python" if e.worker.split(":")[1] == str(python_pid) else "TypeScript"
                    )
                    print(f"   {e.step:<13} ran in {language}")
        small = await client.execute(
            "thumbnail", "https://example.com/cat.png", id=f"thumb-{stamp}"
        )
        print(f"thumbnail -> {small.output}")


if __name__ == "__main__":
    asyncio.run(main())
