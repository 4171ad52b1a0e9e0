"""``@workflow``: a function that declares a graph (``def f(wf)``) becomes a Workflow."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cerebelum.errors import DefinitionError, WorkflowNotFoundError

from ._builder import WorkflowBuilder
from ._compile import compile_graph

if TYPE_CHECKING:
    from cerebelum.code._workflow import CodeWorkflow

__all__ = ["Workflow", "lookup_workflow", "workflow"]


class Workflow:
    """A workflow definition, compiled when it is declared.

    Attributes:
        name: the workflow's name, as stored with each execution.
        kind: ``"graph"``.
        blueprint: the compiled graph, plain data.
        version: the blueprint's hash; an execution resumes on the same version, or
            moves to another one when the nodes it went through are defined the same
            there (see docs/versioning.md).
        label: the version its author named (``@workflow(version="2")``), or ``""``.
    """

    def __init__(self, fn: Callable[..., Any], name: str, label: str = "") -> None:
        self.fn = fn
        self.name = name
        self.label = label
        self.kind = "graph"
        builder = WorkflowBuilder(name)
        fn(builder)
        compiled = compile_graph(builder)
        self.blueprint = compiled.blueprint
        self.steps = compiled.steps
        self.live = compiled.live
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def version(self) -> str:
        return self.blueprint.version

    def __repr__(self) -> str:
        label = f"{self.label}, " if self.label else ""
        return f"<workflow {self.name} ({self.kind}, version {label}{self.version})>"


_registry: dict[str, Any] = {}  # Workflow or CodeWorkflow


def workflow(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, version: str | None = None
) -> Any:
    """Declare a workflow.

    ``@workflow def f(wf): wf.timeline(a >> b)`` declares a graph workflow: the function
    runs once, now, and what it declares is compiled and validated.

    ``@workflow async def f(...)`` declares a code workflow: plain async Python whose
    activities, sleeps, approvals and signals the engine records.

    Args:
        name: the workflow's name (default: the function's name).
        version: a name for this version of the workflow ("2", "2024-06-rollout"), shown
            beside the blueprint's hash in histories, logs and the CLI. What may resume
            where is still decided by the blueprint: see docs/versioning.md. On a code
            workflow it is only recorded.

    Raises:
        DefinitionError: the workflow is not valid; the message names the step.
    """

    def decorate(func: Callable[..., Any]) -> Workflow | CodeWorkflow:
        wf_name = name or getattr(func, "__name__", None)
        if not callable(func) or not wf_name:
            raise DefinitionError(f"@workflow needs a function, not {func!r}")
        _check_unique(wf_name, func)
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise DefinitionError(
                f"workflow {wf_name!r}: version must be a non-empty string, not {version!r}",
                workflow=wf_name,
            )
        label = version or ""
        if inspect.iscoroutinefunction(func):
            from cerebelum.code._workflow import CodeWorkflow

            code_wf = CodeWorkflow(func, wf_name)
            code_wf.label = label
            _registry[wf_name] = code_wf
            return code_wf
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise DefinitionError(
                f"workflow {wf_name!r}: a workflow function cannot be a generator"
            )
        signature = inspect.signature(func)
        if len(signature.parameters) != 1:
            raise DefinitionError(
                f"workflow {wf_name!r} is a plain 'def' taking {len(signature.parameters)}"
                f" parameters: code workflows are 'async def' (@workflow async def {wf_name}"
                f"{signature}); a plain 'def' declares a graph workflow and takes one parameter,"
                f" the builder (def {wf_name}(wf))",
                workflow=wf_name,
            )
        wf = Workflow(func, wf_name, label)
        _registry[wf_name] = wf
        return wf

    return decorate(fn) if fn is not None else decorate


def _check_unique(name: str, func: Callable[..., Any]) -> None:
    """A name belongs to one workflow: executions find their workflow by it.

    Declaring it again in the same module (a new version, a reloaded module) replaces
    the old definition; declaring it in another module is a mistake.
    """
    known = _registry.get(name)
    if known is not None and known.fn.__module__ != func.__module__:
        raise DefinitionError(
            f"workflow name {name!r} is taken by {known.fn.__module__}.{known.fn.__qualname__}; "
            f"{func.__module__}.{func.__qualname__} needs another: @workflow(name=...)",
            workflow=name,
        )


def lookup_workflow(name: str) -> Any:
    """The workflow named ``name`` that this process defines."""
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise WorkflowNotFoundError(
            f"no workflow named {name!r} is defined in this process (defined: {known})",
            workflow=name,
        ) from None


def registered_workflows() -> dict[str, Any]:
    return dict(_registry)
