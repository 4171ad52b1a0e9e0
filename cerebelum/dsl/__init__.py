"""Declaring graph workflows: steps, the ``wf`` builder, rules and flow actions."""

from ._builder import Branch, Diverge, WorkflowBuilder
from ._nodes import ApprovalNode, Chain, Node, WaitNode, approval, wait
from ._rules import Action, Outcome, back_to, fail, proceed, retry, skip_to
from ._step import Context, Error, Retry, StepDef, remote_step, step
from ._workflow import Workflow, lookup_workflow, registered_workflows, workflow

__all__ = [
    "Action",
    "ApprovalNode",
    "Branch",
    "Chain",
    "Context",
    "Diverge",
    "Error",
    "Node",
    "Outcome",
    "Retry",
    "StepDef",
    "WaitNode",
    "Workflow",
    "WorkflowBuilder",
    "approval",
    "back_to",
    "fail",
    "lookup_workflow",
    "proceed",
    "registered_workflows",
    "remote_step",
    "retry",
    "skip_to",
    "step",
    "wait",
    "workflow",
]
