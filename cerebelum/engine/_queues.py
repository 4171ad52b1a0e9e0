"""Queues of executions: how many of a kind run at once, how many start per period.

``engine.start(wf, x, queue=q)`` records the execution as ``queued``: its history holds
``ExecutionStarted`` (with the queue, the priority and the dedup id) and nothing runs.
An engine *admits* queued executions (a row update in one transaction, so that two
engines on one PostgreSQL take turns per queue): while fewer than ``concurrency`` of the
queue's admitted executions are unfinished, and fewer than ``limit`` were admitted in
the last ``period`` seconds, highest priority first, then oldest. An admitted execution
records ``ExecutionAdmitted`` and runs as any other.

Admission runs on every poll of the store, at once after an execution is started on a
queue, and when one of a queue's executions ends (here, or, on PostgreSQL, on another
engine: its NOTIFY). Every engine that shares a store should declare the same queues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cerebelum import events as ev
from cerebelum.errors import DefinitionError, DuplicateError, InvalidRequestError

from ._base import EngineBase

if TYPE_CHECKING:
    from ._run import Run

__all__ = ["Queue", "Queues", "declared_queues", "queue_of"]

logger = logging.getLogger("cerebelum.engine")

#: No limit: larger than any count a store will hold.
_NO_LIMIT = 2**31 - 1

_declared: dict[str, Queue] = {}


@dataclass(frozen=True)
class Queue:
    """A queue of executions, shared by every engine and server on the store.

    Args:
        name: its name.
        concurrency: at most this many of its executions admitted and not ended at once
            (running, or waiting on a timer or an approval), across every engine.
        limit: at most this many admitted per ``period``.
        period: the rate limit's window (seconds or a timedelta); needed with ``limit``.

    Declare it at module level, as a workflow is, in every process that starts or runs
    its executions; declaring one name twice with other limits is an error.
    """

    name: str
    concurrency: int | None = None
    limit: int | None = None
    period: float | timedelta | None = None

    def __post_init__(self) -> None:
        what = f"Queue({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise DefinitionError(f"a queue's name is a non-empty string, not {self.name!r}")
        for field, value in (("concurrency", self.concurrency), ("limit", self.limit)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):  # fmt: skip
                raise DefinitionError(f"{what}: {field} is a whole number >= 1, not {value!r}")
        period = self.period
        if isinstance(period, timedelta):
            period = period.total_seconds()
            object.__setattr__(self, "period", period)
        if (self.limit is None) != (period is None):
            raise DefinitionError(f"{what}: limit and period go together (K starts per period)")
        if period is not None and (not isinstance(period, int | float) or not period > 0):
            raise DefinitionError(f"{what}: period is a number of seconds > 0, not {period!r}")
        known = _declared.get(self.name)
        if known is not None and known != self:
            raise DefinitionError(f"queue {self.name!r} is declared twice: {known} and {self}")
        _declared[self.name] = self


def declared_queues() -> dict[str, Queue]:
    """The queues declared in this process, by name."""
    return dict(_declared)


def queue_of(queue: Any) -> Queue:
    """The declared queue ``queue`` names (a :class:`Queue`, or a declared one's name)."""
    if isinstance(queue, Queue):
        return queue
    if isinstance(queue, str) and queue in _declared:
        return _declared[queue]
    known = ", ".join(sorted(_declared)) or "none"
    raise InvalidRequestError(
        f"{queue!r} is not a declared queue (declared: {known}): declare "
        f"Queue({queue!r}, concurrency=...) at module level"
    )


class Queues(EngineBase):
    """The queue half of :class:`~cerebelum.engine.Engine`: admitting queued executions."""

    async def _check_dedup(self, queue: Queue, dedup_id: str) -> None:
        live = await self.store.live_dedup(queue.name, dedup_id)
        if live is not None:
            raise DuplicateError(
                f"queue {queue.name!r} has a live execution with dedup id {dedup_id!r}: "
                f"{live!r}; start again once it has ended, or wait for its result",
                execution_id=live,
            )

    async def _admit(self) -> None:
        """Let the queued executions of every declared queue run, as far as limits allow."""
        for queue in declared_queues().values():
            ids = await self.store.admit(
                self.id, queue.name, self.clock.timestamp(),
                queue.concurrency or _NO_LIMIT, queue.limit or _NO_LIMIT,
                _seconds(queue.period), 100,
            )  # fmt: skip
            for eid in ids:
                run = self._runs.get(eid) or await self._load(eid)
                if run is not None:
                    self._admitted(run)
                else:
                    logger.warning("engine %s admitted execution %s but cannot run it "
                                   "(its workflow is not defined here)", self.id, eid)  # fmt: skip

    def _admitted(self, run: Run) -> None:
        """Record that ``run``'s queue let it run, and start it."""
        if not run.state.queued or run.state.ended:
            return
        self._apply(run, ev.ExecutionAdmitted)
        if run.kind == "code":
            self._start_coroutine(run)

    def _admit_soon(self) -> None:
        if _declared:  # no copy: this runs each time an execution ends
            self._wanted.add("admit")
            self._poke.set()


def _seconds(period: float | timedelta | None) -> float:
    if isinstance(period, timedelta):
        return period.total_seconds()
    return float(period or 0.0)
