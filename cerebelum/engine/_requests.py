"""Requests from outside an execution: approve, reject, signal, cancel.

The engine that owns an execution takes a request directly. Any other process (the
CLI, another engine) checks it against the history and leaves it in the store's inbox,
where the owner picks it up; checking first means a wrong request is refused at the
door and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from cerebelum import events as ev
from cerebelum.errors import ExecutionNotFoundError, InvalidRequestError
from cerebelum.serde import decode_json, encode

from ._base import EngineBase
from ._match import Outcome
from ._run import check_id
from ._state import TERMINAL, NodeStatus

if TYPE_CHECKING:
    from cerebelum.dsl._workflow import Workflow
    from cerebelum.store import InboxItem, Store

    from ._run import Run

__all__ = ["Requests", "send_request", "waiting_approvals"]

logger = logging.getLogger("cerebelum.engine")


def waiting_approvals(history: list[ev.Event]) -> dict[str, str]:
    """The approvals an execution waits for, by name: ``{name: step-or-position}``."""
    waiting: dict[str, str] = {}
    for e in history:
        if isinstance(e, ev.ApprovalRequested):
            waiting[e.name] = e.step
        elif isinstance(e, ev.ApprovalResolved):
            waiting = {n: s for n, s in waiting.items() if s != e.step}
    return waiting


async def send_request(
    store: Store, execution_id: str, kind: str, name: str, raw: bytes, now: float
) -> None:
    """Check a request against the stored execution, then leave it in the inbox.

    For a process that does not run the execution (the CLI, another engine): the owner
    picks the request up. A wrong request is refused here and writes nothing.

    Raises:
        ExecutionNotFoundError: no such execution.
        InvalidRequestError: the execution has ended, or does not wait for this.
    """
    check_id(execution_id)
    rec = await store.get(execution_id)
    if rec is None:
        raise ExecutionNotFoundError(
            f"no execution has the id {execution_id!r}", execution_id=execution_id
        )
    if rec.status in TERMINAL:
        raise InvalidRequestError(
            f"execution {execution_id!r} is {rec.status}: nothing waits for {kind}",
            execution_id=execution_id,
        )
    if rec.waiting_for is not None and kind in ("approve", "reject"):
        # it would lie in the inbox with nobody to take it: say so now (see _migrate.py)
        raise InvalidRequestError(
            f"execution {execution_id!r} waits for {rec.waiting_for}, which no engine runs: "
            f"move it first ('cerebelum migrate {execution_id} --module ...'), or start an "
            "engine on that version",
            execution_id=execution_id,
        )
    if kind == "signal" and rec.kind != "code":
        raise InvalidRequestError(
            f"execution {execution_id!r} is a graph workflow: it takes approvals, not signals",
            execution_id=execution_id,
        )
    if kind in ("approve", "reject"):
        waiting = waiting_approvals(await store.history(execution_id))
        if name not in waiting:
            raise InvalidRequestError(
                _not_waiting(execution_id, name, list(waiting)), execution_id=execution_id
            )
    await store.send(execution_id, kind, name, raw, now)


def _not_waiting(execution_id: str, name: str, waiting: list[str]) -> str:
    now = ", ".join(repr(w) for w in waiting) if waiting else "none"
    return f"execution {execution_id!r} is not waiting for approval {name!r} (it waits for: {now})"


class Requests(EngineBase):
    """The request half of :class:`~cerebelum.engine.Engine`."""

    async def approve(self, execution_id: str, name: str, data: Any = None) -> None:
        """Approve the approval ``name`` the execution waits on; ``data`` reaches the next step.

        Raises:
            ExecutionNotFoundError: no such execution.
            InvalidRequestError: the execution does not wait for approval ``name``.
            SerializationError: ``data`` cannot be serialised.
        """
        await self._request(execution_id, "approve", name, data)

    async def reject(self, execution_id: str, name: str, data: Any = None) -> None:
        """Reject the approval ``name``; the next step sees ``{"approved": False, ...}``."""
        await self._request(execution_id, "reject", name, data)

    async def signal(self, execution_id: str, name: str, payload: Any = None) -> None:
        """Send signal ``name`` to a code workflow; it is kept until the workflow takes it."""
        await self._request(execution_id, "signal", name, payload)

    async def cancel(self, execution_id: str, reason: str = "") -> None:
        """Cancel the execution and its children: steps in flight stop, nothing more runs."""
        await self._request(execution_id, "cancel", "", reason)

    async def _request(self, execution_id: str, kind: str, name: str, data: Any) -> None:
        self._require_open()
        check_id(execution_id)
        what = "payload of signal" if kind == "signal" else f"data of {kind}"
        raw = encode(data, f"the {what} {name!r} for execution {execution_id!r}")
        run = self._runs.get(execution_id) or await self._load(execution_id)
        if run is not None:
            self._check_request(run, kind, name)
            self._handle_request(run, kind, name, raw)
            await run.committed()
            return
        await send_request(self.store, execution_id, kind, name, raw, self.clock.timestamp())

    def _check_request(self, run: Run, kind: str, name: str) -> None:
        state = run.state
        if state.ended:
            raise InvalidRequestError(
                f"execution {run.id!r} is {state.status}: nothing waits for {kind}",
                execution_id=run.id,
            )
        if kind == "signal" and run.kind != "code":
            raise InvalidRequestError(
                f"execution {run.id!r} is a graph workflow: it takes approvals, not signals",
                execution_id=run.id,
            )
        if kind in ("approve", "reject"):
            waiting = list(self._waiting_approvals(run))
            if name not in waiting:
                raise InvalidRequestError(_not_waiting(run.id, name, waiting), execution_id=run.id)

    def _waiting_approvals(self, run: Run) -> dict[str, str]:
        state = run.state
        if run.kind == "code":
            return {
                c.name: str(p)
                for p, c in state.commands.items()
                if c.kind == "approval" and not c.settled
            }
        return {
            n.name: n.name
            for n in state.bp.nodes
            if n.kind == "approval" and state.node(n.name).status is NodeStatus.WAITING
        }

    def _handle_request(self, run: Run, kind: str, name: str, raw: bytes) -> None:
        if kind == "cancel":
            reason = decode_json(raw)
            self._cancel_children(run)
            run.cancel_tasks()
            self._apply(
                run, ev.ExecutionCancelled, reason=reason if isinstance(reason, str) else ""
            )
        elif kind == "signal":
            self._apply(run, ev.SignalReceived, name=name, payload=ev.Raw(raw))
        else:
            approved = kind == "approve"
            step = self._waiting_approvals(run)[name]
            route = None
            if run.kind == "graph":
                from cerebelum.worker._local import route_for

                outcome = Outcome(ok=True, value={"approved": approved, "data": decode_json(raw)})
                route = route_for(cast("Workflow", run.wf), name, outcome)
            self._apply(
                run,
                ev.ApprovalResolved,
                step=step,
                approved=approved,
                data=ev.Raw(raw),
                route=route,
            )

    def _cancel_children(self, run: Run) -> None:
        children = set(run.children)
        if run.kind == "code":
            children.update(
                c.child_id
                for c in run.state.commands.values()
                if c.kind == "child" and c.child_id and not c.settled
            )
        for child_id in children:
            task = asyncio.create_task(self._cancel_quietly(child_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _cancel_quietly(self, child_id: str) -> None:
        try:
            await self.cancel(child_id, "its parent was cancelled")
        except Exception as exc:  # already ended, or never started: nothing to cancel
            logger.debug("not cancelling child %s: %s", child_id, exc)

    def _receive(self, item: InboxItem) -> None:
        run = self._runs.get(item.execution_id)
        if run is None or item.id in run.inbox_seen:
            return
        run.inbox_seen.add(item.id)
        run.inbox.append(item.id)  # consumed in the same transaction as what it causes
        try:
            self._check_request(run, item.kind, item.name)
        except InvalidRequestError as exc:
            logger.warning("ignoring request %s %r: %s", item.kind, item.name, exc)
            self._mark_dirty(run)
            return
        self._handle_request(run, item.kind, item.name, item.payload)
