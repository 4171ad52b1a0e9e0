"""Values either come back exactly as declared, or are refused naming what and where."""

from __future__ import annotations

import contextlib
import enum
import math
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerebelum import SerializationError
from cerebelum.declared import decode_args, encode_args, hints, returns
from cerebelum.serde import decode, encode, encode_json, roundtrip


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    S = 1
    M = 2


@dataclass(frozen=True)
class Point:
    x: int
    y: float


@dataclass
class Shape:
    name: str
    points: list[Point]
    color: Color
    made: datetime
    tags: set[str]


class Box(msgspec.Struct):
    id: UUID
    price: Decimal
    blob: bytes
    sizes: dict[int, Size]
    span: tuple[date, time]


SHAPE = Shape(
    "tri", [Point(0, 0.5), Point(1, 2.0)], Color.RED, datetime(2030, 1, 2, tzinfo=UTC), {"a"}
)
BOX = Box(
    UUID(int=7),
    Decimal("10.50"),
    b"\x00\x01",
    {1: Size.S, 3: Size.M},
    (date(2030, 1, 2), time(3, 4)),
)

DECLARED = [
    (SHAPE, Shape),
    (BOX, Box),
    ({1, 2}, set[int]),
    (frozenset({"x"}), frozenset[str]),
    ((1, "a", None), tuple[int, str, None]),
    ({3: "three", -1: "minus"}, dict[int, str]),
    (datetime(2030, 1, 2, 3, 4, 5, 6), datetime),
    (datetime(2030, 1, 2, tzinfo=timezone(timedelta(hours=-3))), datetime),
    (date(2030, 1, 2), date),
    (time(23, 59, 1), time),
    (timedelta(days=2, seconds=3), timedelta),
    (UUID(int=1), UUID),
    (Decimal("-0.001"), Decimal),
    (b"\xff\x00", bytes),
    (Color.BLUE, Color),
    (Size.M, Size),
    ([Point(1, 1.0)], list[Point]),
    ({"p": Point(1, 1.0)}, dict[str, Point]),
    (None, Point | None),
    (3, float),  # an int comes back as the float the code declared
]


@pytest.mark.parametrize(("value", "declared"), DECLARED, ids=lambda v: repr(v)[:30])
def test_declared_values_come_back_as_declared(value, declared):
    raw, back = roundtrip(value, "the value", declared)
    assert back == value
    assert decode(raw, declared, "the value") == value
    if declared is not float:
        assert type(back) is type(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({1, 2}, r"a set comes back as a list: declare the type, e.g. '-> set\[int\]'"),
        ({"t": (1, "a")}, r"a tuple comes back as a list at \['t'\]"),
        (
            datetime(2030, 1, 1),
            r"a datetime comes back as a string: declare the type, e.g. '-> datetime'",
        ),
        (b"x", r"bytes come back as base64 text"),
        (float("nan"), r"NaN cannot be stored"),
        ([1.0, -math.inf], r"infinity at \[1\] cannot be stored"),
        (SHAPE, r"a Shape comes back as a dict: declare the type, e.g. '-> Shape'"),
        (
            {3: "x"},
            r"int key 3 would come back as the string '3': declare the type, e.g. '-> dict\[int, str\]'",
        ),
        (Color.RED, r"a Color comes back as a string"),
        (UUID(int=3), r"a UUID comes back as a string"),
        (Decimal("1.5"), r"a Decimal comes back as a string"),
        (
            {"items": [{}, {}, {}, {"name": "\ud800"}]},
            r"the string at \['items'\]\[3\]\['name'\] holds a lone surrogate",
        ),
        ({"k\udc00": 1}, r"a key holds a lone surrogate"),
        ({(1, 2): 1}, r"the key \(1, 2\) is a tuple"),
        ({"o": object()}, r"object at \['o'\] is not supported"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_undeclared_values_that_would_change_are_refused_naming_the_path(value, expected):
    with pytest.raises(
        SerializationError,
        match=r"^the result of step 'charge' cannot be stored: " + f".*{expected}",
    ):
        encode(value, "the result of step 'charge'", Any, "-> {}")


def test_a_value_nested_five_thousand_deep_is_refused_with_a_short_path():
    value: list[Any] = []
    inner = value
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    with pytest.raises(SerializationError, match=r"nested 5001 levels deep") as info:
        encode({"tree": value}, "the inputs of workflow 'w'")
    assert info.value.path.startswith("['tree'][0][0]") and "more levels" in info.value.path
    assert len(info.value.message) < 300


def test_a_value_that_contains_itself_is_refused():
    loop: dict[str, Any] = {}
    loop["me"] = loop
    with pytest.raises(SerializationError, match=r"at \['me'\] contains itself"):
        encode(loop, "x")


def test_a_value_that_does_not_match_its_declared_type_is_refused_naming_the_path():
    as_dict = {**SHAPE.__dict__, "points": [{"x": 1, "y": 1}, {"x": "2", "y": 1}]}
    with pytest.raises(
        SerializationError,
        match=r"at \['b'\]\['points'\]\[1\]\['x'\] does not match the declared type dict\[str, Shape\]",
    ):
        encode({"a": SHAPE, "b": as_dict}, "x", dict[str, Shape])
    wrong = Shape("sq", [Point(1, 1.0), Point("2", 1.0)], Color.RED, SHAPE.made, set())  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match=r"at \['s'\]\.points\[1\]\.x does not match"):
        encode({"s": wrong}, "x", dict[str, Shape])
    with pytest.raises(SerializationError, match=r"Expected `int`, got `bool`"):
        encode(True, "x", int)


def test_a_stored_value_that_no_longer_fits_the_declaration_says_so():
    with pytest.raises(
        SerializationError,
        match=r"the result of step 'a' cannot be read as dict\[str, list\[int\]\]: the stored value at \['k'\]\[1\]",
    ):
        decode(b'{"k": [1, "x"]}', dict[str, list[int]], "the result of step 'a'")


# --- declarations --------------------------------------------------------------------


def order(shape: Shape, *more: Point, when: datetime, **extra: Color) -> set[int]:
    raise NotImplementedError


def untyped(a, b=1):
    raise NotImplementedError


if typing.TYPE_CHECKING:
    from collections.abc import Iterator


def half(items: list[Iterator[int]], n: int) -> Unknown:  # type: ignore[name-defined]  # noqa: F821
    raise NotImplementedError


def test_string_annotations_are_resolved_once_and_unresolvable_ones_are_any():
    assert hints(order)["shape"] is Shape and returns(order) == set[int]
    assert hints(order) is hints(order)  # cached
    assert hints(half) == {"items": Any, "n": int, "return": Any}
    assert returns(untyped) is Any


def test_a_call_is_stored_as_one_dict_and_read_back_argument_by_argument():
    args = (SHAPE, Point(1, 2.0))
    kwargs = {"when": datetime(2030, 1, 1), "tint": Color.BLUE}
    raw = encode_args(order, args, kwargs, "the arguments of activity 'order'")
    assert msgspec.json.decode(raw) == msgspec.json.decode(
        encode_json({"args": list(args), "kwargs": kwargs})
    )
    assert decode_args(order, raw, "x") == {"args": list(args), "kwargs": kwargs}
    with pytest.raises(
        SerializationError, match=r"the arguments of activity 'order' \(argument 'more\[0\]'\)"
    ):
        encode_args(
            order, (SHAPE, {"x": "one", "y": 2.0}), kwargs, "the arguments of activity 'order'"
        )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None, categories=None)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.tuples(
        st.lists(json_values, max_size=3),
        st.dictionaries(st.from_regex(r"\A[a-z]{1,6}\Z"), json_values, max_size=3),
    )
)
def test_a_call_encodes_to_the_same_bytes_as_the_whole_dict(call):
    args, kwargs = call
    try:
        whole = encode_json({"args": args, "kwargs": kwargs})
    except Exception:
        return
    for fn in (untyped_any, typed_object):  # the whole call at once, and argument by argument
        with contextlib.suppress(SerializationError):
            assert encode_args(fn, tuple(args), kwargs, "x") == whole


def untyped_any(*args, **kwargs):
    raise NotImplementedError


def typed_object(*args: object, **kwargs: object):
    raise NotImplementedError


# --- the property: exactly as declared, or SerializationError --------------------------

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None, categories=None), max_size=5)
    | st.sampled_from(["\ud800", "a\udfff b"])
    | st.binary(max_size=4)
    | st.datetimes(timezones=st.none() | st.just(UTC))
    | st.dates()
    | st.uuids()
    | st.decimals(places=2)
    | st.sampled_from(Color)
    | st.frozensets(st.integers(), max_size=3)
    | st.tuples(st.integers(), st.text(max_size=3))
)
anything = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        | st.sets(st.integers() | st.text(max_size=3), max_size=3)
        | st.builds(Point, st.integers(), st.floats())
    ),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return isinstance(a, float) and isinstance(b, int) is False and a == b
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_any_value_comes_back_exactly_under_any_or_is_refused(value):
    try:
        raw, back = roundtrip(value, "the value")
    except SerializationError:
        return
    assert back == value
    assert msgspec.json.decode(raw) == back


TYPED = [int, float, str, bytes, datetime, date, time, timedelta, UUID, Decimal, Color, Size,
         set[int], frozenset[str], tuple[int, str], dict[int, str], list[Point], Point | None, Shape]  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TYPED).flatmap(lambda t: st.tuples(st.just(t), st.from_type(t))))
def test_a_declared_value_comes_back_as_its_type_or_is_refused(pair):
    declared, value = pair
    try:
        raw, back = roundtrip(value, "the value", declared)
    except SerializationError:
        return
    assert back == value
    assert type(back) is type(value) or (declared is float and type(value) is int)
    assert decode(raw, declared, "x") == back


@given(st.sampled_from(TYPED).flatmap(st.from_type) | anything, st.sampled_from([Any, *TYPED]))
def test_refusing_is_the_only_way_to_fail(value, declared):
    with contextlib.suppress(SerializationError):
        roundtrip(value, "the value", declared)


def test_pydantic_models_come_back_as_declared():
    pydantic = pytest.importorskip("pydantic")

    class User(pydantic.BaseModel):
        name: str
        joined: datetime
        tags: set[str]

    user = User(name="ann", joined=datetime(2030, 1, 1, tzinfo=UTC), tags={"x"})
    _, back = roundtrip({"u": user}, "the result of step 'load'", dict[str, User], "-> {}")
    assert back == {"u": user} and isinstance(back["u"], User)
    with pytest.raises(SerializationError, match=r"a User comes back as a dict at \['u'\]"):
        encode({"u": user}, "the result of step 'load'", Any, "-> {}")
    with pytest.raises(SerializationError, match="does not match the declared type User"):
        encode({"name": "ann"}, "x", User)


def test_plain_json_where_a_type_is_declared_is_converted_by_it():
    sent = {"x": 1, "y": 2}  # what a CLI or HTTP caller can send for a Point
    assert roundtrip(sent, "x", Point)[1] == Point(1, 2.0)
    assert roundtrip(["2030-01-02T00:00:00Z"], "x", list[datetime])[1] == [
        datetime(2030, 1, 2, tzinfo=UTC)
    ]
    with pytest.raises(SerializationError, match="does not match the declared type Point"):
        encode({"x": "one"}, "x", Point)
    with pytest.raises(SerializationError, match="int key 1 would come back as the string '1'"):
        encode({1: "a"}, "x", dict[str, str], "-> {}")
