"""The engine: the pure decider, the run loop, timers and resurrection.

The pure parts (blueprint, state, decider) import nothing else of Cerebelum's; the
:class:`Engine`, which composes them with a store and the in-process worker, is
loaded on first use so that the DSL can import the blueprint without it.
"""

from typing import TYPE_CHECKING, Any

from ._blueprint import Blueprint, NodeSpec, RuleSpec
from ._decide import decide
from ._queues import Queue, declared_queues
from ._results import (
    ExecutionError,
    ExecutionInfo,
    ExecutionResult,
    StepInfo,
    TaskInfo,
    summarize_steps,
)
from ._state import ExecutionState, ExecutionStatus, NodeStatus, evolve, fold

if TYPE_CHECKING:
    from ._engine import Engine
    from ._run import Handle, check_id

__all__ = [
    "Blueprint",
    "Engine",
    "ExecutionError",
    "ExecutionInfo",
    "ExecutionResult",
    "ExecutionState",
    "ExecutionStatus",
    "Handle",
    "NodeSpec",
    "NodeStatus",
    "Queue",
    "RuleSpec",
    "StepInfo",
    "TaskInfo",
    "check_id",
    "decide",
    "declared_queues",
    "evolve",
    "fold",
    "summarize_steps",
]


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from ._engine import Engine

        return Engine
    if name == "Handle":
        from ._run import Handle

        return Handle
    if name == "check_id":
        from ._run import check_id

        return check_id
    raise AttributeError(f"module 'cerebelum.engine' has no attribute {name!r}")
