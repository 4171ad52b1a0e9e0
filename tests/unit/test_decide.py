"""The pure decider: what an execution does next, with no database and no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cerebelum import Retry, approval, back_to, fail, proceed, retry, skip_to, step, wait, workflow
from cerebelum import events as ev
from cerebelum.engine import NodeStatus, decide, fold
from cerebelum.engine._decide import add_months, backoff_delay

from .sim import Sim


@step
def a(ctx, inputs):
    return 1


@step
def b(ctx, a):
    return 2


@step
def c(ctx, a):
    return 3


@step
def d(ctx, b=None, c=None):
    return 4


@step
def last(ctx, b=None):
    return 5


@step
def fix(ctx):
    return "fixed"


@step
def flaky(ctx):
    return "ok"


@step(retry=Retry(max_attempts=3, initial=1.0, backoff=2.0))
def with_policy(ctx):
    return "ok"


def ok(value=None, route=None):
    return lambda name: ("ok", value, route)


def test_a_timeline_runs_in_order_and_outputs_the_last_result():
    @workflow
    def line(wf):
        wf.timeline(a >> b >> last)

    sim = Sim(line)
    assert sim.scheduled() == ["a"]
    sim.complete("a", 1)
    assert sim.scheduled() == ["a", "b"]
    sim.complete("b", 2)
    sim.complete("last", 5)
    assert sim.types()[-1] == "ExecutionCompleted"
    assert bytes(sim.history[-1].output) == b"5"


def test_a_parallel_group_starts_together_and_joins():
    @workflow
    def group(wf):
        wf.timeline(a >> [b, c] >> d)

    sim = Sim(group)
    follow = sim.complete("a", 1)
    assert [e.step for e in follow if isinstance(e, ev.StepScheduled)] == ["b", "c"]
    assert sim.complete("c", 3) == []  # d waits for b
    follow = sim.complete("b", 2)
    assert [e.step for e in follow if isinstance(e, ev.StepScheduled)] == ["d"]


def test_a_diverge_to_a_step_off_the_timeline_ends_the_execution_after_it():
    @workflow
    def off_timeline(wf):
        wf.timeline(a >> b >> last)
        wf.diverge(a).when({"age": 17}, target=c)

    sim = Sim(off_timeline)
    sim.complete("a", {"age": 17}, route=0)
    assert sim.of(ev.BranchTaken)[0].target == "c"
    assert sim.skipped() == ["b", "last"]
    sim.complete("c", "consent")
    assert sim.types()[-1] == "ExecutionCompleted"
    assert bytes(sim.history[-1].output) == b'"consent"'
    assert "last" not in sim.scheduled()


def test_a_chain_target_rejoins_the_timeline_where_it_ends():
    @workflow
    def rejoin(wf):
        wf.timeline(a >> b >> last)
        wf.diverge(a).when("bad_input", target=fix >> last)

    sim = Sim(rejoin)
    sim.fail("a", {"kind": "error", "name": "bad_input"}, route=0, retryable=False)
    assert sim.scheduled() == ["a", "fix"]
    sim.complete("fix", "fixed")
    assert sim.scheduled() == ["a", "fix", "last"]
    assert sim.skipped() == ["b"]
    sim.complete("last")
    assert sim.state.ended


def test_a_two_way_branch_takes_one_side_and_skips_the_other():
    @workflow
    def two_way(wf):
        wf.timeline(a)
        wf.branch(after=a, on=lambda r: r > 0, when_true=b, when_false=c)

    yes = Sim(two_way)
    yes.complete("a", 1, route=0)
    assert yes.scheduled() == ["a", "b"] and yes.skipped() == ["c"]
    no = Sim(two_way)
    no.complete("a", -1, route=1)
    assert no.scheduled() == ["a", "c"] and no.skipped() == ["b"]


def test_back_to_runs_the_loop_again_and_stops_at_max_iterations():
    @workflow
    def loop(wf):
        wf.timeline(a >> b)
        wf.diverge(b).when({"again": True}, target=back_to(a, max_iterations=2))

    sim = Sim(loop)
    for iteration in (0, 1, 2):
        assert sim.state.node("a").iteration == iteration
        sim.complete("a", 1)
        sim.complete("b", {"again": True}, route=0)
    assert sim.scheduled() == ["a", "b"] * 3
    assert [e.action for e in sim.of(ev.BranchTaken)] == ["back_to", "back_to"]
    failed = sim.of(ev.ExecutionFailed)[0]
    assert failed.error["kind"] == "max_iterations" and failed.error["step"] == "b"


def test_a_retry_rule_runs_the_step_again_up_to_its_limit():
    @workflow
    def retry_rule(wf):
        wf.timeline(flaky >> fix)
        wf.diverge(flaky).when("rate_limited", target=retry(max_attempts=3))

    sim = Sim(retry_rule)
    error = {"kind": "error", "name": "rate_limited"}
    for _ in range(3):
        sim.fail("flaky", error, route=0, retryable=False)
    assert [e.attempt for e in sim.of(ev.StepScheduled)] == [1, 2, 3]
    assert sim.of(ev.ExecutionFailed)[0].error["kind"] == "retries_exhausted"


def test_the_retry_policy_waits_with_backoff_then_fails():
    @workflow
    def policy(wf):
        wf.timeline(with_policy)

    sim = Sim(policy)
    sim.fail("with_policy")
    first = sim.of(ev.StepRetryScheduled)[-1]
    assert (first.attempt, first.fire_at - sim.now) == (2, 1.0)
    sim.fire("retry:with_policy")
    sim.fail("with_policy")
    second = sim.of(ev.StepRetryScheduled)[-1]
    assert (second.attempt, second.fire_at - sim.now) == (3, 2.0)
    sim.fire("retry:with_policy")
    sim.fail("with_policy")
    error = sim.of(ev.ExecutionFailed)[0].error
    assert error["step"] == "with_policy" and error["attempts"] == 3


def test_a_failure_that_may_not_be_retried_fails_at_once():
    @workflow
    def policy(wf):
        wf.timeline(with_policy)

    sim = Sim(policy)
    sim.fail("with_policy", retryable=False)
    assert sim.of(ev.StepRetryScheduled) == []
    assert sim.state.ended


def test_skip_to_jumps_ahead_and_records_the_steps_in_between_as_skipped():
    @workflow
    def jump(wf):
        wf.timeline(a >> b >> last)
        wf.diverge(a).when({"fast": True}, target=skip_to(last))

    sim = Sim(jump)
    sim.complete("a", {"fast": True}, route=0)
    assert sim.skipped() == ["b"]
    assert sim.scheduled() == ["a", "last"]


def test_a_fail_rule_fails_the_execution_with_its_reason():
    @workflow
    def failing(wf):
        wf.timeline(a >> b)
        wf.diverge(a).when({"fraud": True}, target=fail("fraud suspected"))

    sim = Sim(failing)
    sim.complete("a", {"fraud": True}, route=0)
    error = sim.of(ev.ExecutionFailed)[0].error
    assert error == {
        "kind": "failed_by_rule",
        "step": "a",
        "message": "fraud suspected",
        "cause": None,
    }


def test_proceed_turns_an_error_into_a_none_result_and_carries_on():
    @workflow
    def lenient(wf):
        wf.timeline(a >> b)
        wf.diverge(a).when("not_found", target=proceed())

    sim = Sim(lenient)
    sim.fail("a", {"kind": "error", "name": "not_found"}, route=0, retryable=False)
    assert sim.scheduled() == ["a", "b"]
    assert sim.state.node("a").status is NodeStatus.COMPLETED
    assert bytes(sim.state.node("a").result) == b"null"


def test_an_unrouted_failure_fails_the_execution_naming_the_step():
    @workflow
    def plain(wf):
        wf.timeline(a >> b)

    sim = Sim(plain)
    sim.fail("a", {"kind": "exception", "name": "KeyError", "message": "'x'"})
    error = sim.of(ev.ExecutionFailed)[0].error
    assert (error["step"], error["name"], error["attempts"]) == ("a", "KeyError", 1)
    assert "b" not in sim.scheduled()


def test_a_wait_node_starts_a_timer_and_the_next_step_runs_when_it_fires():
    @workflow
    def pause(wf):
        wf.timeline(a >> wait(days=1) >> b)

    sim = Sim(pause)
    sim.complete("a", 1)
    timer = sim.of(ev.TimerStarted)[0]
    assert (timer.timer, timer.fire_at - sim.now) == ("wait:wait_1d", 86400.0)
    assert sim.state.live_status() == "waiting"
    sim.fire("wait:wait_1d")
    assert sim.scheduled() == ["a", "b"]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2030, 1, 31, 12, tzinfo=UTC), 1, datetime(2030, 2, 28, 12, tzinfo=UTC)),
        (datetime(2032, 1, 31, tzinfo=UTC), 1, datetime(2032, 2, 29, tzinfo=UTC)),
        (datetime(2030, 11, 15, tzinfo=UTC), 3, datetime(2031, 2, 15, tzinfo=UTC)),
    ],
)
def test_calendar_months_count_from_the_start_of_the_wait(start, months, expected):
    assert add_months(start.timestamp(), months) == expected.timestamp()


def test_an_approval_is_requested_and_its_decision_reaches_the_next_step():
    manager = approval("manager", timeout=timedelta(days=2))

    @workflow
    def approve_flow(wf):
        wf.timeline(a >> manager >> b)

    sim = Sim(approve_flow)
    sim.complete("a", 1)
    request = sim.of(ev.ApprovalRequested)[0]
    assert (request.name, request.timeout_at - sim.now) == ("manager", 172800.0)
    sim.push(ev.ApprovalResolved, step="manager", approved=True, data=ev.Raw(b'{"by":"ann"}'))
    assert bytes(sim.state.node("manager").result) == b'{"approved":true,"data":{"by":"ann"}}'
    assert sim.scheduled() == ["a", "b"]
    assert "approval:manager" not in sim.state.timers


def test_an_approval_timeout_routes_like_a_diverge():
    manager = approval("manager", timeout=60)

    @workflow
    def escalating(wf):
        wf.timeline(a >> manager >> b)
        wf.diverge(manager).when("timeout", target=fix)

    sim = Sim(escalating)
    sim.complete("a", 1)
    sim.fire("approval:manager")
    sim.push(ev.ApprovalResolved, step="manager", approved=False, timed_out=True, route=0)
    assert sim.scheduled() == ["a", "fix"] and sim.skipped() == ["b"]


def test_an_unrouted_approval_timeout_fails_the_execution():
    manager = approval("manager", timeout=60)

    @workflow
    def strict(wf):
        wf.timeline(a >> manager >> b)

    sim = Sim(strict)
    sim.complete("a", 1)
    sim.push(ev.ApprovalResolved, step="manager", approved=False, timed_out=True)
    assert sim.of(ev.ExecutionFailed)[0].error["kind"] == "timeout"


def test_a_skipped_dependency_is_none_when_the_parameter_allows_it():
    @workflow
    def optional(wf):
        wf.timeline(a >> b >> last)
        wf.diverge(a).when({"skip": True}, target=skip_to(last))

    sim = Sim(optional)
    sim.complete("a", {"skip": True}, route=0)
    assert sim.scheduled() == ["a", "last"]  # last(ctx, b=None) still runs, with b=None


def test_a_skipped_dependency_skips_a_step_that_needs_it():
    @step
    def needs_b(ctx, b):
        return 5

    @workflow
    def strict_dep(wf):
        wf.timeline(a >> b >> needs_b)
        wf.diverge(a).when({"skip": True}, target=skip_to(needs_b))

    sim = Sim(strict_dep)
    sim.complete("a", {"skip": True}, route=0)
    assert sim.skipped() == ["b", "needs_b"]
    assert sim.state.ended and sim.types()[-1] == "ExecutionCompleted"


def test_decide_does_not_change_the_state_it_is_given():
    @workflow
    def group(wf):
        wf.timeline(a >> [b, c] >> d)

    sim = Sim(group)
    e = ev.StepCompleted(seq=sim.state.seq + 1, at=sim.now, step="a", result=ev.Raw(b"1"))
    from cerebelum.engine import evolve

    evolve(sim.state, e)
    before = {n: (s.status, s.attempt) for n, s in sim.state.nodes.items()}
    first = decide(sim.state, e, sim.now)
    assert {n: (s.status, s.attempt) for n, s in sim.state.nodes.items()} == before
    assert decide(sim.state, e, sim.now) == first


def test_folding_the_history_gives_the_same_state_as_running_it():
    @workflow
    def group(wf):
        wf.timeline(a >> [b, c] >> d)

    sim = Sim(group)
    sim.run(lambda name: ("ok", name, None))
    again = fold(sim.bp, sim.history)
    assert {n: s.status for n, s in again.nodes.items()} == {
        n: s.status for n, s in sim.state.nodes.items()
    }
    assert again.status == sim.state.status == "completed"


def test_backoff_is_capped_by_max_interval():
    policy = {"initial": 1.0, "backoff": 3.0, "max_interval": 5.0}
    assert [backoff_delay(policy, n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]
