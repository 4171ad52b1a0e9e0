"""Properties of the decider over random graphs and random step outcomes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cerebelum import events as ev
from cerebelum import proceed, step, workflow
from cerebelum.dsl import Chain
from cerebelum.engine import NodeStatus, fold

from .sim import Sim


def _step(name: str):
    def fn(ctx):
        return name

    return step(fn, name=name)


@st.composite
def graphs(draw):
    """A timeline of parallel layers, some steps with a diverge to a handler or to proceed."""
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=5))
    layers, count = [], 0
    for size in sizes:
        layers.append([_step(f"p{count + i}") for i in range(size)])
        count += size
    rules = {}
    for layer in layers:
        for s in layer:
            kind = draw(st.sampled_from(["none", "handler", "proceed"]))
            if kind != "none":
                rules[s.name] = kind
    handler = _step("handler")
    outcomes = draw(
        st.lists(st.sampled_from(["ok", "routed", "unrouted"]), min_size=count, max_size=count)
    )

    @workflow(name="random_graph")
    def wf(w):
        chain = Chain.of(layers[0])
        for layer in layers[1:]:
            chain = chain >> layer
        w.timeline(chain)
        for name, kind in rules.items():
            target = handler if kind == "handler" else proceed()
            w.diverge(name).when("oops", target=target)

    return wf, rules, dict(zip([s.name for layer in layers for s in layer], outcomes, strict=True))


def script_for(rules, outcomes):
    def script(name):
        if name == "handler":
            return ("ok", "handled", None)
        outcome = outcomes[name]
        if outcome == "ok":
            return ("ok", name, None)
        routed = outcome == "routed" and name in rules
        return ("fail", {"kind": "error", "name": "oops"}, 0 if routed else None)

    return script


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_every_execution_ends_runs_each_step_at_most_once_and_folds_back(case):
    wf, rules, outcomes = case
    sim = Sim(wf)
    sim.run(script_for(rules, outcomes))
    assert sim.state.ended, "the execution must end"
    scheduled = sim.scheduled()
    assert len(scheduled) == len(set(scheduled)), "a step ran twice"
    seqs = [e.seq for e in sim.history]
    assert seqs == list(range(1, len(seqs) + 1))
    again = fold(sim.bp, sim.history)
    assert {n: s.status for n, s in again.nodes.items()} == {
        n: s.status for n, s in sim.state.nodes.items()
    }
    handled = "handler" in again.nodes and again.node("handler").status is NodeStatus.COMPLETED
    if sim.state.status == "completed" and not handled:
        # only an off-timeline target ends an execution with nodes in flight or undecided
        unsettled = (NodeStatus.PENDING, NodeStatus.ACTIVE)
        assert all(s.status not in unsettled for s in again.nodes.values())
    unrouted = [e for e in sim.of(ev.StepFailed) if e.route is None]
    assert (sim.state.status == "failed") == bool(unrouted)


@settings(max_examples=50, deadline=None)
@given(graphs())
def test_the_same_history_gives_the_same_decisions(case):
    wf, rules, outcomes = case
    first, second = Sim(wf), Sim(wf)
    first.run(script_for(rules, outcomes))
    second.run(script_for(rules, outcomes))
    assert [ev.encode_event(e) for e in first.history] == [
        ev.encode_event(e) for e in second.history
    ]
