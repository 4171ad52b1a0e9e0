"""Declaring graph workflows: what compiles, and what is refused with a named culprit."""

from __future__ import annotations

import msgspec
import pytest

from cerebelum import DefinitionError, Error, Retry, approval, back_to, step, wait, workflow
from cerebelum.dsl._step import unwrap
from cerebelum.engine import Blueprint


@step
def first(ctx, inputs):
    return 1


@step
def second(ctx, first):
    return 2


@step
def third(ctx, second):
    return 3


def define(body):
    @workflow(name="under_test")
    def wf(w):
        body(w)

    return wf


def test_the_blueprint_is_plain_json_and_round_trips():
    wf = define(lambda w: w.timeline(first >> [second, wait(hours=2)] >> third))
    raw = wf.blueprint.to_json()
    again = Blueprint.from_json(raw)
    assert msgspec.json.decode(raw)["nodes"][0]["name"] == "first"
    assert again.to_json() == raw
    assert [n.name for n in again.nodes] == ["first", "second", "wait_2h", "third"]
    assert again.node["third"].after == ["second", "wait_2h"]


def test_the_version_changes_with_the_graph_and_only_with_it():
    one = define(lambda w: w.timeline(first >> second))
    same = define(lambda w: w.timeline(first >> second))
    other = define(lambda w: w.timeline(first >> second >> third))
    assert one.version == same.version != other.version


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda w: w.timeline(second >> first), "cycle"),
        (lambda w: w.timeline(first >> first), "'first' follows itself"),
        (
            lambda w: (w.timeline(first), w.diverge(third).when("x", target=first)),
            "'third' is unreachable",
        ),
        (
            lambda w: (w.timeline(first >> second), w.diverge(first).when("x", target=42)),
            "target 42 is not registered",
        ),
        (
            lambda w: (
                w.timeline(first >> second),
                w.diverge(first).when("x", target=back_to(second)),
            ),
            "does not come after",
        ),
        (
            lambda w: (w.timeline(first >> second), w.diverge(first).when(3.5, target=second)),
            "3.5 is not a pattern",
        ),
        (lambda w: None, "has no timeline"),
        (lambda w: w.timeline(first >> approval("first")), "two different nodes are named 'first'"),
    ],
)
def test_a_wrong_workflow_fails_when_it_is_declared(body, message):
    with pytest.raises(DefinitionError, match=message):
        define(body)


def test_an_unknown_dependency_names_the_step_and_the_parameter():
    @step
    def lonely(ctx, nothing_by_this_name):
        return 1

    with pytest.raises(
        DefinitionError, match="step 'lonely' has a parameter 'nothing_by_this_name'"
    ):
        define(lambda w: w.timeline(lonely))


def test_a_step_named_only_by_a_parameter_joins_the_workflow():
    wf = define(lambda w: w.timeline(first >> third))  # third(ctx, second) pulls in second
    assert set(wf.blueprint.node) == {"first", "second", "third"}
    assert wf.blueprint.node["second"].timeline is False


def test_step_signatures_are_checked_when_declared():
    with pytest.raises(DefinitionError, match="takes no parameter"):
        step(lambda: None)
    with pytest.raises(DefinitionError, match=r"\*args"):

        @step
        def bad(ctx, *rest):
            return 1

    with pytest.raises(DefinitionError, match="max_attempts"):
        Retry(max_attempts=0)


def test_a_graph_workflow_function_takes_the_builder_only():
    with pytest.raises(DefinitionError, match="takes one parameter, the builder"):

        @workflow
        def two_params(a, b):
            pass


@pytest.mark.parametrize("params", ["", "user_id, retries=2", "*args, **kwargs"])
def test_a_code_workflow_written_without_async_is_told_so(params):
    namespace: dict = {}
    exec(f"def charge({params}):\n    return 1", namespace)
    with pytest.raises(DefinitionError) as caught:
        workflow(namespace["charge"])
    message = str(caught.value)
    assert "code workflows are 'async def'" in message
    assert f"@workflow async def charge({params})" in message
    assert "def charge(wf)" in message and caught.value.workflow == "charge"


def test_the_sdk_result_dicts_are_unwrapped():
    assert unwrap({"ok": 5}) == 5
    assert unwrap({"error": "payment_failed"}) == Error("payment_failed")
    assert unwrap({"error": "declined", "data": {"code": 51}}) == Error("declined", {"code": 51})
    assert unwrap({"error": None, "rows": 3}) == {"error": None, "rows": 3}


def test_anonymous_waits_of_the_same_length_get_distinct_names():
    wf = define(lambda w: w.timeline(first >> wait(days=1) >> second >> wait(days=1) >> third))
    assert [n.name for n in wf.blueprint.nodes if n.kind == "wait"] == ["wait_1d", "wait_1d_2"]


def test_wait_refuses_nonsense():
    with pytest.raises(DefinitionError, match="needs a duration"):
        wait()
    with pytest.raises(DefinitionError, match="negative"):
        wait(seconds=-1)


def test_a_workflow_name_belongs_to_one_module():
    def elsewhere(wf):
        wf.timeline(first)

    elsewhere.__module__ = "some.other.module"
    with pytest.raises(
        DefinitionError, match=r"workflow name 'under_test' is taken by tests\.unit\.test_dsl"
    ):
        define(lambda w: w.timeline(first))
        workflow(name="under_test")(elsewhere)
