"""Code workflows: plain async Python, with every command recorded by the engine.

A code workflow must be deterministic: given the same recorded results it must ask for
the same commands in the same order. Read time, randomness and ids through
:func:`now`, :func:`random` and :func:`uuid4`, and do I/O only in activities.
"""

from ._activity import ActivityDef, activity, activity_info, heartbeat, with_options
from ._commands import Decision, child, get_logger, now, patched, random, signal, sleep, uuid4
from ._workflow import CodeWorkflow

__all__ = [
    "ActivityDef",
    "CodeWorkflow",
    "Decision",
    "activity",
    "activity_info",
    "child",
    "get_logger",
    "heartbeat",
    "now",
    "patched",
    "random",
    "signal",
    "sleep",
    "uuid4",
    "with_options",
]
