"""Code workflows: ``@workflow async def f(...)`` whose body decides what runs next."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from cerebelum.errors import InvalidRequestError

__all__ = ["CodeWorkflow"]


class CodeWorkflow:
    """A workflow written as plain async Python.

    Attributes:
        name: the workflow's name, as stored with each execution.
        kind: ``"code"``.
        version: always ``"code"``: executions resume on any version of the code, and
            the journal check (NonDeterminismError) guards them instead.
        label: the version its author named (``@workflow(version=...)``): recorded only.
    """

    kind = "code"
    version = "code"
    label = ""
    blueprint = None

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The inputs as stored: ``{"args": [...], "kwargs": {...}}``, checked against the signature."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidRequestError(
                f"workflow {self.name!r} cannot take these arguments: {exc}", workflow=self.name
            ) from None
        return {"args": list(args), "kwargs": kwargs}

    def __repr__(self) -> str:
        return f"<workflow {self.name} (code)>"
