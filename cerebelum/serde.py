"""Values in the history: stored as JSON, read back as what the code declared.

A value is encoded with msgspec, then decoded again by the type the code declared for
it (``Any`` when it declared none) and compared with the original. It is stored only
if the two are equal (or if it is plain JSON that the declared type converts, the way
a JSON caller sends a dataclass); otherwise it is refused with a
:class:`SerializationError` that names what the value is and where inside it the
difference sits. So a value either comes back as the code declared it, or never enters
the history.

msgspec decodes dataclasses, Structs, datetime, date, time, timedelta, UUID, Decimal,
bytes, Enum, set, frozenset, tuple and ``dict[int, X]`` by their declared type.
Pydantic models are handled when pydantic is imported (``model_dump(mode="json")`` /
``model_validate``); it is not a dependency.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import typing
from typing import Any

import msgspec

from cerebelum.errors import SerializationError

__all__ = ["decode", "decode_json", "encode", "encode_json", "read", "roundtrip", "storable_text"]

# the engine's own structures (error dicts, key lists): no hooks, no checks
_plain_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

encode_json = _plain_encoder.encode
decode_json = _decoder.decode

#: Paths longer than this are shortened in messages (a value nested 1,000 deep).
_PATH_SHOWN = 12


def _pydantic_model(cls: Any) -> bool:
    """Whether ``cls`` is a pydantic model class; pydantic is looked for only once imported."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def _enc_hook(obj: Any) -> Any:
    if _pydantic_model(type(obj)):
        return obj.model_dump(mode="json")
    raise NotImplementedError(f"Encoding objects of type {type(obj).__name__} is unsupported")


def _dec_hook(cls: Any, obj: Any) -> Any:
    if _pydantic_model(cls):
        return cls.model_validate(obj)
    raise NotImplementedError(f"{_type_name(cls)} cannot be decoded")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {Any: _decoder}


def decoder_for(declared: Any) -> msgspec.json.Decoder[Any]:
    """The decoder for ``declared``; the ``Any`` one when msgspec cannot decode that type."""
    try:
        return _decoders[declared]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: build it each time
        return _build_decoder(declared)
    dec = _decoders[declared] = _build_decoder(declared)
    return dec


def usable(declared: Any) -> Any:
    """``declared`` if values can be decoded by it, else ``Any``."""
    return declared if decoder_for(declared) is not _decoder else Any


def _build_decoder(declared: Any) -> msgspec.json.Decoder[Any]:
    try:
        return msgspec.json.Decoder(declared, strict=True, dec_hook=_dec_hook)
    except Exception:  # a type msgspec cannot decode into (e.g. a union of two classes)
        return _decoder


# --- storing --------------------------------------------------------------------------


def encode(value: Any, what: str, declared: Any = Any, hint: str = "") -> bytes:
    """Encode ``value`` as JSON if it comes back as ``declared``; else refuse it.

    Args:
        value: the value to store.
        what: what the value is, e.g. ``"the result of step 'charge'"``.
        declared: the type the code declared for it (``Any`` when none).
        hint: how a declaration reads in the message, ``"-> {}"`` or ``"items: {}"``;
            empty where the code has nowhere to declare a type (approval data, a signal's
            payload): the value must then be plain JSON.

    Raises:
        SerializationError: the value cannot be stored, or would come back different.
    """
    return roundtrip(value, what, declared, hint)[0]


def roundtrip(value: Any, what: str, declared: Any = Any, hint: str = "") -> tuple[bytes, Any]:
    """Encode ``value`` and decode it again by ``declared``: the form every later reader sees.

    Raises:
        SerializationError: as :func:`encode`.
    """
    dec = decoder_for(declared)
    try:
        raw = _encoder.encode(value)
        back = dec.decode(raw)
        same = back is value or back == value
    except Exception as exc:  # whatever the value did: TypeError, RecursionError, ...
        raise _explained(value, what, declared, hint, exc) from None
    if not same and not (declared is not Any and _is_json(value, raw)):
        raise _explained(value, what, declared, hint, None, back)
    return raw, back


def _is_json(value: Any, raw: bytes) -> bool:
    """Whether ``value`` is plain JSON already: given where a type is declared (by a CLI or
    HTTP caller, who cannot send an Order), it is converted by the declaration, as msgspec
    converts any JSON it decodes."""
    try:
        return bool(_decoder.decode(raw) == value)
    except Exception:
        return False


# --- reading --------------------------------------------------------------------------


def decode(raw: Any, declared: Any, what: str) -> Any:
    """Decode a stored value by the type the reading code declared.

    Raises:
        SerializationError: the stored value does not fit ``declared`` (the code changed
            its declaration after the value was stored).
    """
    dec = decoder_for(declared)
    try:
        return dec.decode(raw)
    except msgspec.ValidationError as exc:
        message, parts = _split_validation(str(exc))
        path = _path_text(_resolve(_decoder.decode(raw), declared, parts))
        where = f" at {path}" if path else ""
        raise SerializationError(
            f"{what} cannot be read as {_type_name(declared)}: the stored value{where} "
            f"does not fit ({message})",
            path=path,
            type_name=_type_name(declared),
        ) from None


def read(raw: Any, declared: Any) -> Any:
    """Decode a stored value by ``declared``, or as plain JSON when it does not fit.

    For outputs shown to callers: a declaration changed since the value was stored
    must not make an ended execution unreadable.
    """
    try:
        return decoder_for(declared).decode(raw)
    except msgspec.ValidationError:
        return _decoder.decode(raw)


# --- explaining a refusal -----------------------------------------------------------------


def _explained(
    value: Any, what: str, declared: Any, hint: str, exc: BaseException | None, back: Any = None
) -> SerializationError:
    """The refusal of ``value``; a plainer one if looking into the value fails too."""
    try:
        return _refusal(value, what, declared, hint, exc, back)
    except Exception as inner:  # a value whose attributes or repr raise, say
        reason = exc if exc is not None else inner
        return SerializationError(f"{what} cannot be stored: {reason}", path="", type_name="?")


def _refusal(
    value: Any,
    what: str,
    declared: Any,
    hint: str,
    exc: BaseException | None,
    back: Any = None,
) -> SerializationError:
    if exc is None:
        found = _difference(value, back, declared, hint)
    elif isinstance(exc, msgspec.ValidationError):
        found = _first_problem(value) or _mismatch(value, declared, str(exc))
    else:
        deep = isinstance(exc, RecursionError)
        found = _first_problem(value, deep) or ((), f"it cannot be encoded ({exc})", type(value))
    path, reason, culprit = found
    return SerializationError(
        f"{what} cannot be stored: {reason.replace('{at}', _at(path))}",
        path=_path_text(path),
        type_name=getattr(culprit, "__name__", str(culprit)),
    )


def _at(path: tuple[Any, ...]) -> str:
    return f" at {_path_text(path)}" if path else ""


def _path_text(path: tuple[Any, ...]) -> str:
    parts = [p.text if isinstance(p, _Verbatim) else f"[{p!r}]" for p in path]
    if len(parts) > _PATH_SHOWN:
        hidden = len(parts) - _PATH_SHOWN + 2
        parts = [*parts[: _PATH_SHOWN - 2], f"...({hidden} more levels)...", *parts[-2:]]
    return "".join(parts)


@dataclasses.dataclass(frozen=True)
class _Verbatim:
    """A path step shown as it is: an object's field (``.name``), or msgspec's own path."""

    text: str


def _Field(name: str) -> _Verbatim:
    return _Verbatim(f".{name}")


def _children(value: Any) -> list[tuple[Any, Any]] | None:
    """``(path step, child)`` for a container the encoder walks into; None for a leaf."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    if isinstance(value, set | frozenset):
        return [(i, v) for i, v in enumerate(value)]
    if isinstance(value, msgspec.Struct):
        return [(_Field(f), getattr(value, f)) for f in value.__struct_fields__]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(_Field(f.name), getattr(value, f.name)) for f in dataclasses.fields(value)]
    return None


_Found = tuple[tuple[Any, ...], str, Any]


def _first_problem(value: Any, too_deep: bool = False) -> _Found | None:
    """The first part of ``value`` that JSON cannot hold, walking without recursion.

    A lone surrogate, NaN or infinity, an unsupported key or type, a value that
    contains itself, or (when the encoder ran out of stack: ``too_deep``) its deepest point.
    """
    stack: list[tuple[Any, tuple[Any, ...], tuple[int, ...]]] = [(value, (), ())]
    deepest: tuple[tuple[Any, ...], int] = ((), 0)
    while stack:
        item, path, ancestors = stack.pop()
        found = _leaf_problem(item, path)
        if found is not None:
            return found
        kids = _children(item)
        if kids is None:
            continue
        if id(item) in ancestors:
            return path, "the value{at} contains itself", type(item)
        if len(path) > len(deepest[0]):
            deepest = (path, len(path))
        if isinstance(item, dict):
            for key, _ in kids:
                bad = _key_problem(key, path)
                if bad is not None:
                    return bad
        inner = (*ancestors, id(item))
        stack.extend((child, (*path, step), inner) for step, child in reversed(kids))
    if too_deep:
        levels = deepest[1]
        return (
            deepest[0],
            f"the value{{at}} is nested {levels} levels deep: too deep to store",
            list,
        )
    return None


def _leaf_problem(item: Any, path: tuple[Any, ...]) -> _Found | None:
    if isinstance(item, float) and not math.isfinite(item):
        kind = "NaN" if item != item else "infinity"
        return path, f"{kind}{{at}} cannot be stored (JSON has no {kind})", float
    if isinstance(item, str):
        bad = _surrogate(item)
        if bad is not None:
            return (
                path,
                f"the string{{at}} holds a lone surrogate ({bad!r}), which UTF-8 cannot store",
                str,
            )
        return None
    if _children(item) is not None:
        return None
    try:
        _encoder.encode(item)
    except Exception as exc:
        name = type(item).__name__
        return path, f"{name}{{at}} is not supported ({exc})", type(item)
    return None


def _key_problem(key: Any, path: tuple[Any, ...]) -> _Found | None:
    if isinstance(key, str):
        bad = _surrogate(key)
        if bad is not None:
            return (
                path,
                f"a key{{at}} holds a lone surrogate ({bad!r}), which UTF-8 cannot store",
                str,
            )
        return None
    if isinstance(key, float) and not math.isfinite(key):
        return path, f"the key {key!r}{{at}} cannot be stored (JSON has no NaN or infinity)", float
    try:
        _encoder.encode({key: None})
    except Exception:
        return (
            path,
            f"the key {_short(key)}{{at}} is {_a(type(key).__name__)}: keys are strings or numbers",
            type(key),
        )
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with any lone surrogate escaped: an error message must always be storable."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _surrogate(text: str) -> str | None:
    match = _SURROGATE.search(text)
    return match.group() if match else None


def _difference(value: Any, back: Any, declared: Any, hint: str) -> _Found:
    """Where ``back`` (decoded by ``declared``) first differs from ``value``, and how."""
    problem = _first_problem(value)
    if problem is not None:
        return problem
    stack: list[tuple[Any, Any, tuple[Any, ...]]] = [(value, back, ())]
    while stack:
        a, b, path = stack.pop()
        if type(a) is not type(b):
            return path, _changed(a, b, _hint(hint, path)), type(a)
        if isinstance(a, dict):
            for ka, kb in zip(a, b, strict=False):
                if type(ka) is not type(kb) or ka != kb:
                    return path, _key_changed(ka, kb, a, _hint(hint, path)), type(ka)
            pairs = [(va, b[k], (*path, k)) for k, va in a.items() if k in b and not _eq(va, b[k])]
        elif isinstance(a, list | tuple) and len(a) == len(b):
            pairs = [
                (x, y, (*path, i))
                for i, (x, y) in enumerate(zip(a, b, strict=True))
                if not _eq(x, y)
            ]
        elif (kids := _children(a)) is not None and not isinstance(
            a, set | frozenset | list | tuple
        ):
            other = dict(_children(b) or [])
            pairs = [(x, other.get(s), (*path, s)) for s, x in kids if not _eq(x, other.get(s))]
        else:
            pairs = []
        if not pairs:
            return path, f"the value{{at}} comes back as {_short(b)}, not {_short(a)}", type(a)
        stack.extend(reversed(pairs))
    return (), "it comes back different", type(value)  # pragma: no cover


def _hint(hint: str, path: tuple[Any, ...]) -> str:
    """How to declare the type of the part of the value at ``path``."""
    if not path or not hint:
        return hint
    last = path[-1]
    if isinstance(last, _Verbatim):
        return f"{last.text.lstrip('.')}: {{}}"
    if isinstance(last, str) and last.isidentifier():
        return f"{last}: {{0}}' (a dataclass field) or 'dict[str, {{0}}]"
    return "list[{}]"


def _eq(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


_COMES_BACK_AS_STR = {
    "datetime": "datetime",
    "date": "date",
    "time": "time",
    "timedelta": "timedelta",
    "UUID": "UUID",
    "Decimal": "Decimal",
}


def _changed(a: Any, b: Any, hint: str) -> str:
    """How a value of one type comes back as another, with the declaration that fixes it."""
    name = type(a).__name__
    got = type(b).__name__
    if isinstance(a, set | frozenset):
        told = f"{_a(name)} comes back as a list"
        suggestion = f"{name}[{_element_name(a)}]"
    elif isinstance(a, tuple):
        told = "a tuple comes back as a list"
        suggestion = f"tuple[{', '.join(_type_text(x) for x in a) or '()'}]"
    elif isinstance(a, bytes | bytearray | memoryview):
        told = f"{name} come back as base64 text"
        suggestion = name
    elif isinstance(a, str | int | float | bool) and isinstance(b, str | int | float | bool):
        told = f"{_a(name)} comes back as {_a(got)}"
        suggestion = name
    elif type(b) is str:
        told = f"{_a(name)} comes back as a string"
        suggestion = _COMES_BACK_AS_STR.get(name, name)
    elif type(b) is dict:
        told = f"{_a(name)} comes back as a dict"
        suggestion = name
    else:
        told = f"{_a(name)} comes back as {_short(b)}"
        suggestion = name
    return f"{told}{{at}}: {_advice(hint, suggestion)}"


def _key_changed(ka: Any, kb: Any, container: dict[Any, Any], hint: str) -> str:
    key = type(ka).__name__
    values = {_type_text(v) for v in container.values()}
    value = values.pop() if len(values) == 1 else "Any"
    return f"{key} key {ka!r}{{at}} would come back as the {_kind(kb)} {kb!r}: " + _advice(
        hint, f"dict[{key}, {value}]"
    )


def _advice(hint: str, suggestion: str) -> str:
    if not hint:
        return "nothing declares a type here, so only plain JSON values keep theirs"
    return f"declare the type, e.g. '{hint.format(suggestion)}'"


def _a(noun: str) -> str:
    low = noun.lower()
    vowel = low[:1] in "aeio" or low[:2] in ("un", "up", "ul", "um")  # an Order, a User
    vowel = vowel and not noun.isupper()  # a UUID
    return f"an {noun}" if vowel else f"a {noun}"


def _kind(value: Any) -> str:
    return "string" if isinstance(value, str) else type(value).__name__


def _element_name(values: Any) -> str:
    names = {_type_text(v) for v in values}
    return names.pop() if len(names) == 1 else "Any"


def _type_text(value: Any) -> str:
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(declared: Any) -> str:
    if isinstance(declared, type):
        return declared.__name__
    return _MODULES.sub("", repr(declared))


_MODULES = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")


_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")
_PATH_PART = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")


def _split_validation(message: str) -> tuple[str, list[str | int | None]]:
    """msgspec's ``Expected int, got str - at `$.items[3]``` as the message and its path.

    In the path a name is a field, an int an index, and None a dict entry msgspec
    does not name (``[...]``).
    """
    match = _MSGSPEC_PATH.search(message)
    if match is None:
        return message, []
    parts: list[str | int | None] = []
    for name, index in _PATH_PART.findall(match.group(1)):
        parts.append(name if name else None if index == "..." else int(index))
    return message[: match.start()], parts


def _mismatch(value: Any, declared: Any, message: str) -> _Found:
    text, parts = _split_validation(message)
    return (
        _resolve(value, declared, parts),
        f"the value{{at}} does not match the declared type {_type_name(declared)} ({text})",
        type(value),
    )


def _resolve(value: Any, declared: Any, parts: list[str | int | None]) -> tuple[Any, ...]:
    """msgspec's path as a path into ``value``, naming the dict keys msgspec leaves out."""
    path: list[Any] = []
    for n, part in enumerate(parts):
        origin, args = typing.get_origin(declared), typing.get_args(declared)
        if isinstance(part, str):
            path.append(_Field(part) if not isinstance(value, dict) else part)
            value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
            hints = _class_hints(declared)
            declared = hints.get(part, Any)
        elif isinstance(part, int) and isinstance(value, list | tuple) and part < len(value):
            path.append(part)
            value = value[part]
            fixed = origin is tuple and not (len(args) == 2 and args[1] is ...)
            declared = args[part] if fixed and part < len(args) else args[0] if args else Any
        elif part is None and isinstance(value, dict) and len(args) == 2:
            inner = decoder_for(args[1])
            bad = next((k for k, v in value.items() if not _decodes(inner, v)), _NOTHING)
            if bad is _NOTHING:
                return (*path, *(_Verbatim("[...]") for _ in parts[n:]))
            path.append(bad)
            value, declared = value[bad], args[1]
        else:
            shown = [
                _Verbatim("[...]" if p is None else f"[{p}]" if isinstance(p, int) else f".{p}")
                for p in parts[n:]
            ]
            return (*path, *shown)
    return tuple(path)


_NOTHING = object()


def _decodes(dec: msgspec.json.Decoder[Any], value: Any) -> bool:
    try:
        dec.decode(_encoder.encode(value))
    except Exception:
        return False
    return True


def _class_hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls) if isinstance(cls, type) else {}
    except Exception:
        return {}
