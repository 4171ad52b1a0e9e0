"""The remote worker: runs steps and activities handed out by a ``cerebelum server``.

A :class:`Worker` registers what it hosts, long-polls for tasks, runs each in this
process exactly as the embedded engine would (same code path, same values), and
reports the outcome. It is built to be killed and restarted at any moment:

- it heartbeats every task it holds, a third of the server's lease apart, so that a
  task it still runs is never offered to another worker, and one it held when it died
  is offered again (same attempt, same idempotency key) once the lease runs out;
- a result is kept until the server acknowledges it: when the server is away, the
  worker sends it again with backoff, and registers again when the server has
  forgotten it (a restart);
- :meth:`Worker.stop` (SIGTERM under ``cerebelum worker``) stops taking tasks, lets
  the ones it holds finish and hands their results over before :meth:`Worker.run`
  returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import msgspec

from cerebelum import protocol as p
from cerebelum.code._activity import ActivityDef, declared_activities
from cerebelum.dsl._step import Context
from cerebelum.dsl._workflow import registered_workflows
from cerebelum.engine._context import ActivityInfo, current_activity, current_runtime
from cerebelum.errors import CerebelumError, InvalidRequestError
from cerebelum.observe._logs import set_log_context
from cerebelum.observe._observer import Attempt
from cerebelum.serde import decode_json

from ._activation import Coroutines
from ._local import attempt_activity, attempt_step, step_arguments

if TYPE_CHECKING:
    from cerebelum.observe._tracing import Tracing

__all__ = ["Worker"]

logger = logging.getLogger("cerebelum.worker")

T = TypeVar("T")

#: The longest a worker waits between two tries to reach the server.
MAX_BACKOFF = 5.0
_RawMap = msgspec.json.Decoder(dict[str, msgspec.Raw])
#: The server cannot be reached, or the connection broke.
_TRANSPORT = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class _Refused(Exception):
    """The server answered with an error (not a transport failure)."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(f"{status} {type_}: {message}")
        self.status, self.type, self.message = status, type_, message

    @property
    def forgotten(self) -> bool:
        """The server does not know this worker (it restarted): register again."""
        return self.status == 404 and self.type == "UnknownWorkerError"


class Worker:
    """Runs the steps and activities a server hands out.

    Args:
        server: the server's URL (``http://127.0.0.1:8080``).
        workflows: the graph workflows whose steps it runs (default: every one defined in
            this process).
        activities: the activities it runs (default: every function decorated with
            ``@activity`` in this process).
        queues: the queues it takes tasks from.
        concurrency: how many tasks it runs at once.
        token: the server's worker token (default ``$CEREBELUM_WORKER_TOKEN``).
        worker_id: its id (default: host, pid and a random part).
        poll_wait: how long one poll waits for a task before asking again.
        drain_timeout: once stopped, how long it goes on trying to hand its last results
            over to a server that does not answer.
        tracing: run each attempt in an OpenTelemetry span, a child of the execution's
            span (the task's ``traceparent``): ``True`` for the global tracer provider, or
            a ``TracerProvider``; needs ``pip install 'cerebelum[otel]'``.
    """

    def __init__(
        self,
        server: str,
        *,
        workflows: list[Any] | None = None,
        activities: list[Any] | None = None,
        queues: list[str] | None = None,
        concurrency: int = 10,
        token: str | None = None,
        worker_id: str | None = None,
        poll_wait: float = 10.0,
        drain_timeout: float = 60.0,
        tracing: Any = False,
    ) -> None:
        if concurrency < 1:
            raise InvalidRequestError(f"concurrency is a whole number >= 1, not {concurrency!r}")
        self.server = server.rstrip("/")
        self.queues = list(queues or ["default"])
        self.concurrency = concurrency
        self.token = token if token is not None else os.environ.get("CEREBELUM_WORKER_TOKEN")
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_wait = poll_wait
        self.drain_timeout = drain_timeout
        graphs = workflows if workflows is not None else list(registered_workflows().values())
        self._steps: dict[str, tuple[Any, str]] = {
            f"{wf.name}.{step}": (wf, step)
            for wf in graphs
            if wf.kind == "graph"
            for step, sd in wf.steps.items()
            if not sd.task  # a remote step: hosted by whoever registers its task name
        }
        self._workflows = {wf.name: wf for wf in graphs if wf.kind == "code"}
        acts = activities if activities is not None else list(declared_activities().values())
        self._activities: dict[str, ActivityDef] = {}
        for a in acts:
            adef = a if isinstance(a, ActivityDef) else ActivityDef(fn=a, name=a.__name__)
            self._activities[adef.name] = adef
        self.lease = 30.0
        self._running: dict[str, tuple[p.Task, asyncio.Task[None], ActivityInfo, float]] = {}
        self._backlog: list[tuple[p.Task, float]] = []  # leased to it, waiting for a slot
        self._results: dict[str, p.TaskResult] = {}
        self._reported = asyncio.Event()  # results were added, or acknowledged
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._coroutines = Coroutines()
        self._tracing: Tracing | None = None
        if tracing is not False and tracing is not None:
            from cerebelum.observe._tracing import Tracing

            self._tracing = Tracing(None if tracing is True else tracing)
        self._http: aiohttp.ClientSession | None = None

    @property
    def hosts(self) -> dict[str, list[str]]:
        """What it registers: step task names and activity names."""
        return {"steps": sorted(self._steps), "activities": sorted(self._activities),
                "workflows": sorted(self._workflows)}  # fmt: skip

    def stop(self) -> None:
        """Stop taking tasks; :meth:`run` returns once those held are done and reported."""
        self._stopping.set()

    async def run(self) -> None:
        """Register, then take and run tasks until :meth:`stop`."""
        if not self._steps and not self._activities and not self._workflows:
            raise CerebelumError(
                "this worker hosts nothing: define workflows or @activity functions "
                "(import their modules) before starting it"
            )
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        # aiohttp, not httpx: a request costs this worker 0.5 ms instead of 1.2 ms (measured
        # on loopback, bench/README.md), and a worker sends one per task it runs
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=self.poll_wait + 10)
        async with aiohttp.ClientSession(self.server, headers=headers, timeout=timeout) as http:
            self._http = http
            await self._register()
            helpers = [asyncio.create_task(self._sender(), name="cerebelum-worker-sender"),
                       asyncio.create_task(self._heartbeats(), name="cerebelum-worker-heartbeats")]  # fmt: skip
            try:
                await self._take()
                while self._running or self._backlog:
                    logger.info("worker %s: finishing %d tasks", self.id,
                                len(self._running) + len(self._backlog))  # fmt: skip
                    await asyncio.gather(*(t for _, t, _, _ in list(self._running.values())),
                                         return_exceptions=True)  # fmt: skip
                try:  # hand the results over; a server away for good must not keep us
                    async with asyncio.timeout(self.drain_timeout):
                        while self._results and not helpers[0].done():
                            self._reported.clear()
                            await self._reported.wait()
                except TimeoutError:
                    logger.warning(
                        "worker %s: stopping with %d results the server did not take (%s): "
                        "their tasks are offered again when their leases run out",
                        self.id, len(self._results), ", ".join(self._results),
                    )  # fmt: skip
            finally:
                for helper in helpers:
                    helper.cancel()
                for helper in helpers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
                self._http = None
                self._coroutines.close()
        logger.info("worker %s stopped", self.id)

    # --- talking to the server ------------------------------------------------------------

    async def _call(self, path: str, message: Any, answer: type[T]) -> T:
        assert self._http is not None
        async with self._http.post(path, data=p.encode(message)) as response:
            body = await response.read()
            status = response.status
        if status >= 400:
            try:
                error = msgspec.json.decode(body)["error"]
                type_, why = str(error["type"]), str(error["message"])
            except Exception:
                type_, why = "HTTPError", body[:200].decode(errors="replace")
            raise _Refused(status, type_, why)
        return p.decode(body, answer)

    async def _patiently(self, what: str, call: Any) -> Any:
        """``await call()`` until the server answers; with backoff while it is away."""
        delay = 0.05
        while True:
            try:
                answer = await call()
            except (*_TRANSPORT, _Refused) as exc:
                if isinstance(exc, _Refused) and exc.status not in (502, 503, 504):
                    raise
                level = logging.WARNING if delay == 0.05 else logging.DEBUG
                logger.log(level, "worker %s: %s: the server at %s does not answer (%s); trying "
                           "again, up to %gs apart", self.id, what, self.server, exc, MAX_BACKOFF)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if delay > 0.05:
                logger.warning("worker %s: the server at %s answers again", self.id, self.server)
            return answer

    async def _register(self) -> None:
        hosts = self.hosts
        reg = p.Register(worker_id=self.id, steps=hosts["steps"], activities=hosts["activities"],
                         workflows=hosts["workflows"], queues=self.queues,
                         concurrency=self.concurrency)  # fmt: skip
        answer = await self._patiently(
            "registering", lambda: self._call("/v1/worker/register", reg, p.Registered)
        )
        self.lease = answer.lease
        logger.info("worker %s registered with %s (%d steps, %d activities)", self.id,
                    self.server, len(reg.steps), len(reg.activities))  # fmt: skip

    async def _again(self, exc: _Refused) -> None:
        """After a refusal: register again if the server forgot us, else pass it on."""
        if exc.forgotten:
            await self._register()
        else:
            raise exc

    # --- taking tasks -----------------------------------------------------------------

    async def _take(self) -> None:
        slot_free = self._slot_free
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                room = self.concurrency - len(self._running) - len(self._backlog)
                if room <= 0:
                    slot_free.clear()
                    await asyncio.wait([stop, asyncio.ensure_future(slot_free.wait())],
                                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                    continue
                ask = p.Poll(worker_id=self.id, max_tasks=room, wait=self.poll_wait)
                polling = asyncio.ensure_future(self._patiently("polling", partial(
                    self._call, "/v1/worker/poll", ask, p.PollResponse)))  # fmt: skip
                await asyncio.wait([stop, polling], return_when=asyncio.FIRST_COMPLETED)
                if not polling.done():  # stopping: what a cut poll held is offered again later
                    polling.cancel()
                    with contextlib.suppress(BaseException):
                        await polling
                    break
                try:
                    answer = polling.result()
                except _Refused as exc:
                    await self._again(exc)
                    continue
                for task in answer.tasks:
                    self._start(task)
        finally:
            stop.cancel()

    def _start(self, task: p.Task) -> None:
        if task.task_id in self._running or task.task_id in self._results:
            return  # offered again while it runs here, or before its result got through
        if len(self._running) >= self.concurrency:  # a report's answer brought more
            self._backlog.append((task, time.monotonic()))
            return
        info = ActivityInfo(task.execution_id, task.name, task.attempt, task.idempotency_key,
                            last_heartbeat=time.monotonic())  # fmt: skip
        if not isinstance(task.heartbeat_details, msgspec.UnsetType):
            info.heartbeat_details = msgspec.json.decode(task.heartbeat_details)
        running = asyncio.create_task(
            self._run_task(task, info), name=f"cerebelum-task-{task.task_id}"
        )
        self._running[task.task_id] = (task, running, info, time.monotonic())

    async def _run_task(self, task: p.Task, info: ActivityInfo) -> None:
        started = time.time()
        kind = str(task.kind.value)
        hosted = self._steps.get(task.name) if kind == "step" else None
        name = hosted[1] if hosted is not None else task.name  # a step's task: workflow.step
        what = {kind: name} if kind != "workflow" else {}  # an activation: the workflow's
        set_log_context(execution_id=task.execution_id, workflow=task.workflow or task.name,
                        attempt=task.attempt, task_id=task.task_id, **what)  # fmt: skip
        try:
            current_runtime.set(None)
            current_activity.set(info)
            if self._tracing is None:
                raw, error, commands = await self._attempt(task, info)
            else:
                seen = Attempt(task.execution_id, task.workflow or task.name, kind, name,
                               task.attempt, task.traceparent)  # fmt: skip
                with self._tracing.task_scope(seen):
                    raw, error, commands = await self._attempt(task, info)
                    seen.error = error.to_dict() if error is not None else None
        except asyncio.CancelledError:
            return  # the server no longer wants it (see _heartbeats)
        except Exception as exc:  # what the task gave could not be read: a failure of it
            raw, error, commands = None, p.ErrorInfo.from_exception(exc), None
        finally:
            self._running.pop(task.task_id, None)
            if self._backlog:
                self._start(self._backlog.pop(0)[0])
            else:
                self._slot_free.set()
        value: Any = msgspec.Raw(raw) if error is None and raw is not None else msgspec.UNSET
        if commands is not None:
            value, error = msgspec.UNSET, None
        self._results[task.task_id] = p.TaskResult(
            task_id=task.task_id, attempt=task.attempt, started_at=started, value=value,
            error=error, commands=commands,
        )  # fmt: skip
        self._reported.set()

    async def _attempt(self, task: p.Task, info: ActivityInfo) -> tuple[bytes | None, Any, Any]:
        """Run the task: its result, or its error, or (an activation) its commands."""
        try:
            if task.kind == "step":
                return (*await self._step(task, info), None)
            if task.kind == "activity":
                return (*await self._activity(task, info), None)
            wf = self._workflows.get(task.name)
            if wf is None:
                raise CerebelumError(f"this worker does not host workflow {task.name!r}")
            return None, None, await self._coroutines.activate(wf, task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # what the task gave could not be read: a failure of it
            return None, p.ErrorInfo.from_exception(exc), None

    async def _step(self, task: p.Task, info: ActivityInfo) -> tuple[bytes | None, Any]:
        hosted = self._steps.get(task.name)
        if hosted is None:
            raise CerebelumError(f"this worker does not host step {task.name!r}")
        wf, step = hosted
        sd = wf.steps[step]
        given = _RawMap.decode(task.inputs)
        inputs = decode_json(given["inputs"]) if "inputs" in given else None

        def raw_of(name: str) -> bytes | None:
            raw = given.get(name)
            return bytes(raw) if raw is not None and bytes(raw) != b"null" else None

        ctx = Context(task.execution_id, wf.name, step, task.attempt, task.iteration, inputs)
        return await attempt_step(wf, step, ctx, lambda: step_arguments(wf, sd, inputs, raw_of),
                                  task.start_to_close_timeout)  # fmt: skip

    async def _activity(self, task: p.Task, info: ActivityInfo) -> tuple[bytes | None, Any]:
        adef = self._activities.get(task.name)
        if adef is None:
            raise CerebelumError(f"this worker does not host activity {task.name!r}")
        adef = replace(adef, timeout=task.start_to_close_timeout,
                       heartbeat_timeout=task.heartbeat_timeout)  # fmt: skip
        return await attempt_activity(adef, info, bytes(task.inputs))

    # --- heartbeats and results ---------------------------------------------------------

    async def _heartbeats(self) -> None:
        """Heartbeat each task held longer than a third of the lease, a third apart."""
        while True:
            await asyncio.sleep(self.lease / 3)
            due = time.monotonic() - self.lease / 3
            held: list[tuple[p.Task, Callable[[], Any], Any]] = [
                (t, job.cancel, info.heartbeat_details)
                for t, job, info, since in list(self._running.values())
                if since <= due
            ]
            held += [(t, partial(self._drop, t.task_id), None)
                     for t, since in self._backlog if since <= due]  # fmt: skip
            await asyncio.gather(*(self._beat(*h) for h in held))

    def _drop(self, task_id: str) -> None:
        self._backlog = [(t, since) for t, since in self._backlog if t.task_id != task_id]

    async def _beat(self, task: p.Task, cancel: Any, progress: Any) -> None:
        details = msgspec.Raw(p.encode(progress)) if progress is not None else p.NULL
        beat = p.Heartbeat(worker_id=self.id, task_id=task.task_id, attempt=task.attempt,
                           details=details)  # fmt: skip
        try:
            answer = await self._call("/v1/worker/heartbeat", beat, p.HeartbeatResponse)
        except _Refused as exc:
            if exc.forgotten:
                with contextlib.suppress(Exception):
                    await self._register()
            return
        except (*_TRANSPORT, msgspec.MsgspecError) as exc:
            logger.debug("worker %s: heartbeat of %s failed: %s", self.id, task.task_id, exc)
            return
        if answer.cancelled:
            logger.info(
                "worker %s: task %s is no longer wanted: stopping it", self.id, task.task_id
            )
            cancel()

    async def _sender(self) -> None:
        """Hand the results over, many at once; keep each until it is acknowledged."""
        delay = 0.05
        while True:
            if not self._results:
                self._reported.clear()
                await self._reported.wait()
                continue
            batch = list(self._results.values())
            # each result frees a slot: take as many tasks back in the answer
            room = max(0, self.concurrency - len(self._running) - len(self._backlog))
            room = 0 if self._stopping.is_set() else min(room, len(batch))
            report = p.Report(worker_id=self.id, results=batch, max_tasks=room)
            try:
                answer = await self._call("/v1/worker/report", report, p.ReportResponse)
            except _Refused as exc:
                if exc.forgotten:
                    await self._register()
                    continue
                if exc.status in (502, 503, 504):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                    continue
                # the server will never take these: keeping them would block the rest
                logger.error("worker %s: the server refused results %s: %s", self.id,
                             ", ".join(r.task_id for r in batch), exc)  # fmt: skip
                for r in batch:
                    self._results.pop(r.task_id, None)
                self._reported.set()
                continue
            except _TRANSPORT as exc:
                logger.warning("worker %s: cannot hand %d results to %s (%s); trying again in %.2fs",
                               self.id, len(batch), self.server, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            delay = 0.05
            for task_id in answer.acknowledged:
                self._results.pop(task_id, None)
            for task in answer.tasks:
                self._start(task)
            self._reported.set()
