"""A server, two workers and a client: the engine and the code that runs the steps apart.

This file is both the workflows' module and the script that runs them. Run as a
script, it starts (each a process of its own, on 127.0.0.1):

- ``cerebelum server examples/remote_workers.py``: the engine; it records every
  event, decides what runs next and hands each step to a worker as a task;
- two ``cerebelum worker examples/remote_workers.py`` processes, one on the queue
  ``default`` and one on the queue ``payments``: each runs only the steps of its queue;

then a :class:`cerebelum.Client`, which hosts no workflow code, starts a refund by the
workflow's name, approves it when it waits for a manager, and prints the result and
which worker ran each step. The server and the workers are stopped with SIGTERM at the
end: a worker finishes what it holds before it exits.

Run it: ``python examples/remote_workers.py`` (uses ./cerebelum.db, or $CEREBELUM_DB).
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

from cerebelum import Client, approval, step, workflow
from cerebelum.events import StepStarted

HERE = Path(__file__).resolve()


@step
async def look_up_order(context, inputs):
    return {"order": inputs["order"], "total": 120, "card": "4242"}


manager = approval("manager")


@step(queue="payments")  # only a worker on the queue "payments" runs it
async def refund_card(context, look_up_order, manager):
    if not manager["approved"]:
        return {"refunded": 0}
    # context.idempotency_key is the same if this step runs again: pass it to the gateway
    return {"refunded": look_up_order["total"], "key": context.idempotency_key}


@step
async def email_customer(context, look_up_order, refund_card):
    return {"emailed": look_up_order["order"], "amount": refund_card["refunded"]}


@workflow
def refund(wf):
    wf.timeline(look_up_order >> manager >> refund_card >> email_customer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    # what the processes say goes to a file, shown only if anything fails
    with tempfile.TemporaryFile("w+") as logs:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        db = os.environ.get("CEREBELUM_DB", "cerebelum.db")
        cli = [sys.executable, "-m", "cerebelum"]
        # this folder first (the workflows' module), then whatever the caller had
        path = [str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        server = [*cli, "server", str(HERE), "--db", db, "--port", str(port)]
        workers = [[*cli, "worker", str(HERE), "--server", url, "--queue", queue]
                   for queue in ("default", "payments")]  # fmt: skip
        procs = [subprocess.Popen(argv, stdout=logs, stderr=logs, env=env)
                 for argv in (server, *workers)]  # fmt: skip
        try:
            await refund_one(
                url,
                {str(p.pid): q for p, q in zip(procs[1:], ("default", "payments"), strict=True)},
            )
        except BaseException:
            logs.seek(0)
            print(logs.read(), file=sys.stderr)
            raise
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)


async def refund_one(url: str, queue_of: dict[str, str]) -> None:
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
        order = f"R-{int(time.time() * 1000) % 100000}"
        handle = await client.start("refund", {"order": order}, id=f"refund-{order}")
        print(f"started {handle.id} through {url}")
        while (await handle.status()).status != "waiting":
            await asyncio.sleep(0.02)
        print("it waits for the manager; approving")
        await client.approve(handle.id, "manager", data={"by": "ann"})
        result = await handle.result(timeout=30)
        print(f"-> {result.status}: {result.output}")
        history = await handle.history()
        for e in history:
            if isinstance(e, StepStarted):  # its worker: host:pid:random
                queue = queue_of.get(e.worker.split(":")[1], "?")
                print(f"   {e.step:<15} ran on the worker of queue {queue!r}")


if __name__ == "__main__":
    asyncio.run(main())
