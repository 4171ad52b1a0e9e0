"""JSON payloads: what crosses into the history must survive a round trip.

Values are encoded with msgspec (dicts, lists, str, numbers, bool, None, and also
datetimes, UUIDs, dataclasses and msgspec Structs, which decode as their JSON form).
"""

from __future__ import annotations

from typing import Any

import msgspec

from cerebelum.errors import SerializationError

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

encode_json = _encoder.encode
decode_json = _decoder.decode


def encode(value: Any, what: str) -> bytes:
    """Encode ``value`` as JSON, or raise :class:`SerializationError` naming ``what``.

    Args:
        value: the value to encode.
        what: where the value comes from, e.g. ``"the result of step 'charge'"``.
    """
    try:
        return _encoder.encode(value)
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        path, culprit = _find_culprit(value, "")
        where = f" at {path}" if path else ""
        kind = type(culprit).__qualname__ if culprit is not _NOTHING else "?"
        raise SerializationError(
            f"{what} cannot be serialised to JSON: {kind}{where} is not supported ({exc})",
            type_name=kind,
            path=path,
        ) from None


def roundtrip(value: Any, what: str) -> tuple[bytes, Any]:
    """Encode ``value`` and decode it again: the form every later reader will see."""
    raw = encode(value, what)
    return raw, _decoder.decode(raw)


_NOTHING = object()


def _find_culprit(value: Any, path: str) -> tuple[str, Any]:
    """The path and value of the first part of ``value`` that does not encode."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool):
                return f"{path}[{key!r}] (key)", key
            found = _find_culprit(item, f"{path}[{key!r}]")
            if found[1] is not _NOTHING:
                return found
        return path, _NOTHING
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _find_culprit(item, f"{path}[{i}]")
            if found[1] is not _NOTHING:
                return found
        return path, _NOTHING
    try:
        _encoder.encode(value)
    except Exception:
        return path, value
    return path, _NOTHING
