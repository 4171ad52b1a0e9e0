"""What the code declared: the types stored values are checked against and read back as.

A value is read back by the annotation of the code that receives it, falling back to
the code that produced it:

- a graph step's parameter: its own annotation, else the producing step's return
  annotation (``inputs``: its annotation, else the one the workflow's steps agree on);
- a code workflow's, a child workflow's or an activity's arguments: the function's
  parameter annotations;
- an activity's result: the activity function's return annotation;
- a code workflow's output: the workflow function's return annotation.

Annotations are resolved once per function (``from __future__ import annotations``
included); one that cannot be resolved, or that msgspec cannot decode into, counts as
``Any``: the value is then stored and read as plain JSON.
"""

from __future__ import annotations

import contextlib
import inspect
import types
import typing
from typing import Any

import msgspec

from cerebelum import events as ev
from cerebelum.errors import SerializationError
from cerebelum.serde import _dec_hook, decode, decode_json, encode, encode_json, read, usable

__all__ = [
    "child_args",
    "child_output",
    "decode_args",
    "encode_args",
    "encode_inputs",
    "inputs_of",
    "output_type",
    "read_output",
    "result_type",
    "returns",
    "step_param",
]

_hints: dict[Any, dict[str, Any]] = {}


def hints(fn: Any) -> dict[str, Any]:
    """The usable annotations of ``fn`` by parameter name (``"return"`` for its result)."""
    try:
        return _hints[fn]
    except KeyError:
        pass
    except TypeError:  # unhashable callable
        return _resolve(fn)
    found = _hints[fn] = _resolve(fn)
    return found


def _resolve(fn: Any) -> dict[str, Any]:
    try:
        raw = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # a name only imported under TYPE_CHECKING, say: resolve one by one
        raw = {}
        namespace = getattr(inspect.unwrap(fn), "__globals__", {})
        for name, ann in getattr(fn, "__annotations__", {}).items():
            try:
                raw[name] = eval(ann, namespace) if isinstance(ann, str) else ann
            except Exception:
                raw[name] = Any
    return {name: usable(ann) for name, ann in raw.items()}


def returns(fn: Any) -> Any:
    """The declared result type of ``fn``; ``Any`` when it declares none."""
    return hints(fn).get("return", Any)


def output_type(workflow: Any) -> Any:
    """A workflow's declared output type: a code workflow's return annotation, else Any."""
    return returns(workflow.fn) if getattr(workflow, "kind", None) == "code" else Any


def step_param(wf: Any, sd: Any, name: str) -> Any:
    """The type step ``sd`` of graph workflow ``wf`` reads its parameter ``name`` as."""
    own = hints(sd.fn).get(name, Any)
    if own is not Any:
        return own
    if name == "inputs":
        return _graph_input(wf)
    producer = wf.steps.get(name)
    return returns(producer.fn) if producer is not None else Any


_graph_inputs: dict[Any, Any] = {}


def _graph_input(wf: Any) -> Any:
    """The type a graph workflow's steps declare for ``inputs``, if they agree on one."""
    try:
        return _graph_inputs[wf]
    except KeyError:
        pass
    found = {
        hints(sd.fn).get("inputs", Any)
        for sd in wf.steps.values()
        if any(p.name == "inputs" for p in sd.params)
    } - {Any}
    declared = _graph_inputs[wf] = found.pop() if len(found) == 1 else Any
    return declared


def result_type(runtime: Any, position: int | None) -> Any:
    """The type the command at ``position`` of a code workflow returns (activity, child)."""
    if position is None:
        return Any
    adef = runtime.run.activities.get(position)
    if adef is not None:
        return returns(adef.fn)
    cmd = runtime.state.commands.get(position)
    if cmd is not None and cmd.kind == "child":
        try:
            return output_type(runtime.engine.workflow(cmd.name))
        except Exception:  # not defined here: the engine reports that where it starts it
            return Any
    return Any


def read_output(workflow: str, raw: Any) -> Any:
    """An ended execution's stored output, read by its workflow's declared output type."""
    from cerebelum.dsl._workflow import registered_workflows

    found = registered_workflows().get(workflow)
    return read(raw, output_type(found) if found is not None else Any)


def child_args(engine: Any, workflow: str, raw: Any) -> dict[str, Any]:
    """A child's recorded arguments, typed; plain JSON if they no longer fit (then its
    start refuses them, and the child fails with that error)."""
    try:
        return decode_args(
            engine.workflow(workflow), raw, f"the arguments of child workflow {workflow!r}"
        )
    except Exception:
        return decode_json(raw) if raw is not None else {}


def child_output(engine: Any, workflow: str, result: Any) -> ev.Raw:
    """A child's output (its ExecutionResult's), encoded again for its parent's history."""
    if not result.ok:
        return ev.NULL
    try:
        declared = output_type(engine.workflow(workflow))
        return ev.Raw(encode(result.output, f"the output of workflow {workflow!r}", declared))
    except Exception:  # read as plain JSON (its declaration changed): store it as such
        return ev.Raw(encode_json(result.output))


# --- calls: {"args": [...], "kwargs": {...}} ------------------------------------------------


def encode_inputs(workflow: Any, inputs: Any, what: str) -> bytes:
    """A workflow's inputs as stored: a code workflow's ``{"args", "kwargs"}``, a graph's value.

    Raises:
        SerializationError: an argument cannot be stored as its parameter declares it.
    """
    if workflow.kind == "code":
        return encode_args(workflow, inputs["args"], inputs["kwargs"], what)
    return encode(inputs, what, _graph_input(workflow), "inputs: {}")


def encode_args(target: Any, args: Any, kwargs: dict[str, Any], what: str) -> bytes:
    """``{"args": [...], "kwargs": {...}}`` for a call of ``target`` (a function or workflow).

    Each argument is checked against its parameter's annotation; the bytes are those
    of encoding the whole dict at once, so recorded calls compare equal.

    Raises:
        SerializationError: an argument cannot be stored as its parameter declares it.
    """
    if _untyped(target):  # one check of the whole call; name the argument if it fails
        with contextlib.suppress(SerializationError):
            return encode({"args": list(args), "kwargs": kwargs}, what)
    elif not kwargs:  # the usual call: one check of all the arguments as a typed tuple
        with contextlib.suppress(SerializationError):
            as_tuple, _ = _positional_call(target, len(args))
            return b'{"args":' + encode(tuple(args), what, as_tuple) + b',"kwargs":{}}'
    positional, named = _call_types(target, len(args), kwargs)
    parts = [
        encode(value, f"{what} (argument {label!r})", declared, f"{label}: {{}}")
        for value, (label, declared) in zip(args, positional, strict=True)
    ]
    keywords = [
        encode_json(key)
        + b":"
        + encode(value, f"{what} (argument {key!r})", named[key], f"{key}: {{}}")
        for key, value in kwargs.items()
    ]
    return b'{"args":[' + b",".join(parts) + b'],"kwargs":{' + b",".join(keywords) + b"}}"


class _Call(msgspec.Struct):
    args: list[msgspec.Raw] = []
    kwargs: dict[str, msgspec.Raw] = {}


_call_decoder = msgspec.json.Decoder(_Call)


def decode_args(target: Any, raw: Any, what: str) -> dict[str, Any]:
    """A stored call's arguments, each decoded by its parameter's annotation.

    Raises:
        SerializationError: a stored argument does not fit its parameter's annotation.
    """
    if raw is None:
        return {}
    if _untyped(target):
        value: dict[str, Any] = decode_json(raw)
        return value
    call = _call_decoder.decode(raw)
    if not call.kwargs:
        with contextlib.suppress(msgspec.ValidationError):
            typed = _positional_call(target, len(call.args))[1].decode(raw)
            return {"args": list(typed.args), "kwargs": {}}
    positional, named = _call_types(target, len(call.args), call.kwargs)
    return {
        "args": [
            decode(value, declared, f"{what} (argument {label!r})")
            for value, (label, declared) in zip(call.args, positional, strict=True)
        ],
        "kwargs": {
            key: decode(value, named[key], f"{what} (argument {key!r})")
            for key, value in call.kwargs.items()
        },
    }


_positional: dict[tuple[Any, int], tuple[Any, msgspec.json.Decoder[Any]]] = {}


def _positional_call(target: Any, count: int) -> tuple[Any, msgspec.json.Decoder[Any]]:
    """For a call of ``target`` with ``count`` positional arguments and no keywords: the
    type of the arguments as a tuple, and a decoder of the whole stored call."""
    key = (getattr(target, "fn", target), count)
    try:
        return _positional[key]
    except KeyError:
        pass
    positional, _ = _call_types(target, count, ())
    # tuple[A, B, ...] of the declared types, which are known only at run time
    args = types.GenericAlias(tuple, tuple(declared for _, declared in positional))
    call = msgspec.defstruct("Call", [("args", args), ("kwargs", dict[str, Any], {})])
    found = _positional[key] = (args, msgspec.json.Decoder(call, strict=True, dec_hook=_dec_hook))
    return found


def inputs_of(workflow: Any, raw: Any) -> dict[str, Any]:
    """A code workflow's stored inputs as ``{"args": [...], "kwargs": {...}}``, typed."""
    return decode_args(workflow, raw, f"the inputs of workflow {workflow.name!r}") or {}


def _call_types(
    target: Any, count: int, kwargs: Any
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The label and declared type of each positional argument, and of each keyword."""
    if getattr(target, "kind", None) == "graph":  # a graph child takes its input
        return [("inputs", _graph_input(target))] * count, dict.fromkeys(kwargs, Any)
    sig = _signature(target)
    positional = sig.positional[:count]
    while len(positional) < count:
        i = len(positional)
        label = f"{sig.star}[{i - len(sig.positional)}]" if sig.star else str(i)
        positional.append((label, sig.star_type))
    return positional, {key: sig.named.get(key, sig.rest_type) for key in kwargs}


class _Signature:
    """What a function's parameters declare, read once per function."""

    def __init__(self, fn: Any) -> None:
        types = hints(fn)
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        self.positional: list[tuple[str, Any]] = []
        self.named: dict[str, Any] = {}
        self.star: str | None = None
        self.star_type: Any = Any
        self.rest_type: Any = Any
        for p in params:
            declared = types.get(p.name, Any)
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.positional.append((p.name, declared))
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                self.named[p.name] = declared
            if p.kind is p.VAR_POSITIONAL:
                self.star, self.star_type = p.name, declared
            if p.kind is p.VAR_KEYWORD:
                self.rest_type = declared
        self.untyped = all(t is Any for _, t in self.positional) and all(
            t is Any for t in (*self.named.values(), self.star_type, self.rest_type)
        )


_signatures: dict[Any, _Signature] = {}


def _untyped(target: Any) -> bool:
    """Whether no argument of a call of ``target`` has a declared type."""
    if getattr(target, "kind", None) == "graph":
        return _graph_input(target) is Any
    return _signature(target).untyped


def _signature(target: Any) -> _Signature:
    fn = getattr(target, "fn", target)
    try:
        return _signatures[fn]
    except KeyError:
        sig = _signatures[fn] = _Signature(fn)
        return sig
    except TypeError:  # unhashable callable
        return _Signature(fn)
