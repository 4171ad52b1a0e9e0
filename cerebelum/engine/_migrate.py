"""Versions of graph workflows: executions left at a blueprint no engine here runs.

An execution records the blueprint it started on (its hash, ``version``, and the name
its author gave, ``label``). When the workflow changes, an engine runs only the new
blueprint, and an unfinished execution of the old one would wait for nobody. So, at
every claim pass, an engine looks at the unfinished executions of its workflows at
other versions that no live engine holds:

- an execution may continue on the new blueprint when every node its history went
  through (completed, failed, skipped, running, waiting: approvals and waits count) is
  defined the same in both blueprints (same kind, dependencies, parameters, rules,
  retry, timeouts: the blueprint's per-node data). The engine moves it, recording
  ``ExecutionMigrated`` in the same transaction that changes its version, and carries
  on; nodes the new blueprint added behind resolved ones are decided at once.
- otherwise it stays where it is, its row says what it waits for (``waiting_for``),
  the engine logs one warning per workflow with the counts per version, and
  ``engine.result`` of it raises :class:`~cerebelum.errors.VersionMismatchError`
  instead of waiting. An engine running the old version takes it again (a claim clears
  ``waiting_for``); or an operator moves it (``cerebelum migrate ID``,
  ``engine.migrate(ID)``), which needs only that every node the history went through
  still exists with the same kind.

Comparing needs the old blueprint: each engine keeps, once, every blueprint it starts
an execution on (``blueprints`` table). An execution started before blueprints were
kept can only be moved by an operator.

On a SQLite store the one engine holds the executions it cannot run (owner), so that
``cerebelum migrate`` from another process reaches it through the inbox; on
PostgreSQL nobody holds them, so that an engine still running the old version (a
rolling deploy) can take them.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cerebelum import events as ev
from cerebelum.errors import (
    ExecutionNotFoundError,
    InvalidRequestError,
    VersionMismatchError,
)
from cerebelum.serde import decode_json, encode_json
from cerebelum.store import ExecutionRecord, Store, Write

from ._base import EngineBase
from ._blueprint import Blueprint
from ._decide import decide
from ._state import TERMINAL, NodeStatus, evolve, fold

if TYPE_CHECKING:
    from cerebelum.store import InboxItem

    from ._run import Run

__all__ = [
    "Versions",
    "changed_nodes",
    "check_movable",
    "describe_version",
    "migrate_from_outside",
    "operator",
    "touched_nodes",
]

logger = logging.getLogger("cerebelum.engine")

_STEP_EVENTS = (ev.StepScheduled, ev.StepStarted, ev.StepCompleted, ev.StepFailed,
                ev.StepRetryScheduled)  # fmt: skip
_TIMER_KINDS = {"wait": "wait", "approval": "approval", "retry": "step"}


def describe_version(version: str, label: str = "") -> str:
    """``2@3f2a9c1d00aa1122`` (label and hash), or the hash alone."""
    return f"{label}@{version}" if label else version


def history_label(history: list[ev.Event]) -> str:
    """The version label the execution runs at now, as its history says."""
    label = ""
    for e in history:
        if isinstance(e, ev.ExecutionStarted):
            label = e.label
        elif isinstance(e, ev.ExecutionMigrated):
            label = e.to_label
    return label


def touched_nodes(history: list[ev.Event]) -> dict[str, str | None]:
    """Every node the history went through, with its kind when the events tell it."""
    nodes: dict[str, str | None] = {}

    def see(name: str, kind: str | None) -> None:
        if nodes.get(name) is None:
            nodes[name] = kind

    for e in history:
        if isinstance(e, _STEP_EVENTS):
            see(e.step, "step")
        elif isinstance(e, ev.ApprovalRequested | ev.ApprovalResolved):
            see(e.step, "approval")
        elif isinstance(e, ev.TimerStarted | ev.TimerFired):
            kind, _, name = e.timer.partition(":")
            see(name, _TIMER_KINDS.get(kind))
        elif isinstance(e, ev.StepSkipped | ev.BranchTaken):
            see(e.step, None)
    return nodes


def changed_nodes(old: Blueprint, new: Blueprint, history: list[ev.Event]) -> list[str]:
    """The nodes the history went through that ``new`` lacks or defines otherwise."""
    changed = []
    for name in touched_nodes(history):
        before, after = old.node.get(name), new.node.get(name)
        if (
            before is None
            or after is None
            or before != after
            or old.rules.get(name, []) != new.rules.get(name, [])
        ):
            changed.append(name)
    return changed


def check_movable(execution_id: str, new: Blueprint, history: list[ev.Event]) -> None:
    """Refuse a move the new blueprint cannot hold: a node gone, or of another kind.

    Raises:
        InvalidRequestError: naming the nodes.
    """
    problems = []
    for name, kind in touched_nodes(history).items():
        spec = new.node.get(name)
        if spec is None:
            problems.append(f"{name!r}, which it went through, is not in it")
        elif kind is not None and spec.kind != kind:
            problems.append(f"{name!r} is a {spec.kind} there, but was a {kind}")
    if not problems:
        try:
            fold(new, history, execution_id)
        except Exception as exc:  # a history the new graph cannot hold, however
            problems.append(f"its history does not fold on it ({type(exc).__name__}: {exc})")
    if problems:
        raise InvalidRequestError(
            f"execution {execution_id!r} cannot move to version "
            f"{describe_version(new.version)} of workflow {new.name!r}: " + "; ".join(problems),
            execution_id=execution_id,
        )


def operator() -> str:
    """Who moves an execution by hand, and from where: ``user@host pid N``."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "?"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def waiting_error(rec: ExecutionRecord, runs: str | None = None) -> VersionMismatchError:
    here = f" (this engine runs {runs})" if runs else ""
    return VersionMismatchError(
        f"execution {rec.id!r} of workflow {rec.workflow!r} waits for {rec.waiting_for}, "
        f"which no engine here runs{here}; an engine on that version takes it, or "
        f"'cerebelum migrate {rec.id} --module ...' moves it to the current one",
        execution_id=rec.id,
        workflow=rec.workflow,
        waiting_for=rec.waiting_for,
    )


async def _checked(
    store: Store, wf: Any, execution_id: str
) -> tuple[ExecutionRecord, list[ev.Event]]:
    rec = await store.get(execution_id)
    if rec is None:
        raise ExecutionNotFoundError(
            f"no execution has the id {execution_id!r}", execution_id=execution_id
        )
    if rec.workflow != wf.name:
        raise InvalidRequestError(
            f"execution {execution_id!r} runs workflow {rec.workflow!r}, not {wf.name!r}",
            execution_id=execution_id,
        )
    if rec.kind != "graph" or wf.kind != "graph":
        raise InvalidRequestError(
            f"execution {execution_id!r} is a code workflow: it resumes on any version of "
            "its code (its journal checks it), there is nothing to migrate",
            execution_id=execution_id,
        )
    if rec.status in TERMINAL:
        raise InvalidRequestError(
            f"execution {execution_id!r} is {rec.status}: there is nothing to migrate",
            execution_id=execution_id,
        )
    if rec.version == wf.version:
        raise InvalidRequestError(
            f"execution {execution_id!r} already runs version "
            f"{describe_version(wf.version, wf.label)} of {wf.name!r}",
            execution_id=execution_id,
        )
    history = await store.history(execution_id)
    check_movable(execution_id, wf.blueprint, history)
    return rec, history


async def _changed(
    store: Store, rec: ExecutionRecord, wf: Any, history: list[ev.Event]
) -> list[str]:
    old = await store.blueprint(rec.version)
    if old is None:
        return sorted(touched_nodes(history))  # not known: say which ones it went through
    return changed_nodes(Blueprint.from_json(old.blueprint), wf.blueprint, history)


def _event(rec: ExecutionRecord, wf: Any, history: list[ev.Event], at: float, *,
           forced: bool, by: str, changed: list[str]) -> ev.ExecutionMigrated:  # fmt: skip
    return ev.ExecutionMigrated(
        seq=history[-1].seq + 1 if history else 1, at=at,
        from_version=rec.version, to_version=wf.version,
        from_label=history_label(history), to_label=wf.label,
        forced=forced, by=by, changed=changed,
    )  # fmt: skip


async def migrate_from_outside(
    store: Store, wf: Any, execution_id: str, by: str, now: float, lease: float = 15.0
) -> str:
    """``cerebelum migrate``: move an execution onto ``wf``'s blueprint, from any process.

    When a live engine holds it (the one engine of a SQLite store), the request goes
    through the inbox and that engine moves it; otherwise it is moved here, in one
    transaction, and the next engine running ``wf`` takes it.

    Returns:
        ``"moved"`` or ``"sent"``.

    Raises:
        ExecutionNotFoundError: no such execution.
        InvalidRequestError: it has ended, already runs this version, runs in a live
            engine, or went through a node the new blueprint lacks or has of another kind.
    """
    rec, history = await _checked(store, wf, execution_id)
    if rec.owner is not None and await store.engine_alive(rec.owner, now, lease):
        if rec.waiting_for is None:
            raise InvalidRequestError(
                f"execution {execution_id!r} runs in engine {rec.owner} at version "
                f"{rec.version}: it waits for no version",
                execution_id=execution_id,
            )
        await store.send(execution_id, "migrate", wf.version, encode_json({"by": by}), now)
        return "sent"
    changed = await _changed(store, rec, wf, history)
    event = _event(rec, wf, history, now, forced=True, by=by, changed=changed)
    await store.save_blueprint(wf.version, wf.name, wf.label, wf.blueprint.to_json(), now)
    if not await store.move(execution_id, rec.version, wf.version, event, None, now, lease):
        raise InvalidRequestError(
            f"execution {execution_id!r} changed while it was being moved (an engine took "
            "it, or it went on): look at it again",
            execution_id=execution_id,
        )
    return "moved"


class VersionState:
    """What an engine remembers about versions: blueprints kept, old ones read."""

    def __init__(self) -> None:
        self.kept: set[str] = set()
        self.old: dict[str, Blueprint | None] = {}
        self.scanned = False


class Versions(EngineBase):
    """The versioning half of :class:`~cerebelum.engine.Engine`."""

    async def _keep_blueprint(self, wf: Any) -> None:
        """Keep ``wf``'s blueprint in the store (once) before an execution starts on it."""
        if wf.kind != "graph" or wf.version in self._versions.kept:
            return
        # like the start it comes before, it waits through a store that does not answer
        await self._patiently(
            lambda: self.store.save_blueprint(
                wf.version, wf.name, wf.label, wf.blueprint.to_json(), self._wall.timestamp()
            )
        )
        self._versions.kept.add(wf.version)

    async def _old_blueprint(self, version: str) -> Blueprint | None:
        cache = self._versions.old
        if version not in cache:
            stored = await self.store.blueprint(version)
            cache[version] = Blueprint.from_json(stored.blueprint) if stored else None
        return cache[version]

    async def _adopt_stranded(self, runnable: dict[str, Any]) -> None:
        """Move the executions left at other versions that may move; report the others.

        The first pass (at open) looks at all of them and warns about each workflow's;
        later passes (PostgreSQL) only at those no engine looked at yet.
        """
        graph = {n: wf for n, wf in runnable.items() if wf.kind == "graph"}
        if not graph:
            return
        first = not self._versions.scanned
        records = await self.store.stranded(
            self.id, self._wall.timestamp(), self.lease, 100_000,
            {n: wf.version for n, wf in graph.items()}, first,
        )  # fmt: skip
        self._versions.scanned = True
        left: dict[str, Counter[str]] = {}
        for rec in records:
            if rec.id in self._runs or rec.id in self._loading:
                continue
            wf = graph[rec.workflow]
            history = await self.store.history(rec.id)
            old = await self._old_blueprint(rec.version)
            changed = changed_nodes(old, wf.blueprint, history) if old else None
            if changed == []:
                await self._move(rec, wf, history, forced=False, by=self.id, changed=[])
                continue
            at = describe_version(rec.version, history_label(history))
            why = (
                "its blueprint was not kept"
                if old is None
                else f"changed: {', '.join(changed or [])}"
            )
            logger.info("execution %s of %s stays at version %s (%s)", rec.id, rec.workflow,
                        at, why, extra={"execution_id": rec.id})  # fmt: skip
            owner = self.id if self.store.exclusive else None
            await self.store.set_waiting(rec.id, f"version {at}", owner)
            left.setdefault(rec.workflow, Counter())[at] += 1
        for name, counts in left.items():
            wf = graph[name]
            logger.warning(
                "%d executions of workflow %s cannot run here: at versions %s; the current "
                "version is %s ('cerebelum migrate ID' moves one when that is safe)",
                sum(counts.values()), name,
                ", ".join(f"{v} ({n})" for v, n in counts.most_common()),
                describe_version(wf.version, wf.label), extra={"workflow": name},
            )  # fmt: skip

    async def _move(self, rec: ExecutionRecord, wf: Any, history: list[ev.Event], *,
                    forced: bool, by: str, changed: list[str]) -> Run | None:  # fmt: skip
        """Move ``rec`` onto ``wf``'s blueprint, take it, and carry on; None if it went."""
        event = _event(rec, wf, history, self.clock.timestamp(), forced=forced, by=by,
                       changed=changed)  # fmt: skip
        await self._keep_blueprint(wf)
        moved = await self.store.move(rec.id, rec.version, wf.version, event, self.id,
                                      self._wall.timestamp(), self.lease)  # fmt: skip
        if not moved:
            return None
        logger.info(
            "execution %s of %s moves from version %s to %s%s", rec.id, wf.name,
            describe_version(event.from_version, event.from_label),
            describe_version(event.to_version, event.to_label),
            f" (forced by {by})" if forced else "", extra={"execution_id": rec.id},
        )  # fmt: skip
        rec = replace(rec, version=wf.version, owner=self.id, waiting_for=None)
        return self._revive(rec, [*history, event])

    def _after_migration(self, run: Run, history: list[ev.Event]) -> None:
        """Decide what follows a migration whose consequences are not recorded yet.

        A move records ``ExecutionMigrated`` alone (with the version change); what it
        causes (nodes the new blueprint added behind resolved ones) is decided here, by
        whichever engine revives the execution first, and committed as usual.
        """
        if run.kind != "graph" or not history or not isinstance(history[-1], ev.ExecutionMigrated):
            return
        state = run.state
        for follow in decide(state, history[-1], self.clock.timestamp()):
            evolve(state, follow)
            run.buffer.append(follow)
            if (
                isinstance(follow, ev.StepScheduled)
                and state.node(follow.step).status is NodeStatus.ACTIVE
            ):
                self._ready(run, follow.step, follow.attempt)
        self._mark_dirty(run)  # timers and steps start after the commit, as usual

    async def migrate(self, execution_id: str) -> str:
        """Move an execution onto the blueprint this engine runs for its workflow.

        For an execution left at another version that could not move by itself (a node
        it went through changed): the caller says the change is safe for it. The move is
        recorded in its history (``ExecutionMigrated``, forced, with this engine's id)
        and the execution carries on here.

        Returns:
            The version (blueprint hash) it runs at now.

        Raises:
            ExecutionNotFoundError: no such execution.
            InvalidRequestError: it has ended, already runs this version, runs in another
                live engine, or went through a node the new blueprint lacks or has of
                another kind (the message names them).
        """
        self._require_open()
        rec = await self._record(execution_id)
        wf = self.workflow(rec.workflow)
        rec, history = await _checked(self.store, wf, execution_id)
        alive = rec.owner not in (None, self.id) and await self.store.engine_alive(
            rec.owner, self._wall.timestamp(), self.lease
        )
        if alive:
            await migrate_from_outside(self.store, wf, execution_id, f"engine {self.id}",
                                       self._wall.timestamp(), self.lease)  # fmt: skip
            return wf.version
        changed = await _changed(self.store, rec, wf, history)
        run = await self._move(rec, wf, history, forced=True, by=f"engine {self.id}",
                               changed=changed)  # fmt: skip
        if run is None:
            raise InvalidRequestError(
                f"execution {execution_id!r} changed while it was being moved: look again",
                execution_id=execution_id,
            )
        await run.committed()
        return wf.version

    async def _take_migrate(self, item: InboxItem) -> None:
        """A ``cerebelum migrate`` for an execution this engine holds but cannot run."""
        run = None
        try:
            wf = self.workflow((await self._record(item.execution_id)).workflow)
            rec, history = await _checked(self.store, wf, item.execution_id)
            by = (decode_json(item.payload) or {}).get("by", "")
            changed = await _changed(self.store, rec, wf, history)
            run = await self._move(rec, wf, history, forced=True, by=by, changed=changed)
        except Exception as exc:  # refused, or gone: say so, and drop the request
            logger.warning("not migrating execution %s: %s", item.execution_id, exc)
        if run is not None:
            run.inbox.append(item.id)  # consumed with what the move causes
            self._mark_dirty(run)
        else:
            await self.store.commit([Write(item.execution_id, [], inbox_done=[item.id])])

    def _unrunnable(self, rec: ExecutionRecord) -> VersionMismatchError | None:
        """The error for ``result()`` of an execution no engine can run, else None."""
        if rec.waiting_for is None or rec.status in TERMINAL:
            return None
        wf = self._runnable().get(rec.workflow)
        runs = describe_version(wf.version, wf.label) if wf is not None else None
        return waiting_error(rec, runs)
