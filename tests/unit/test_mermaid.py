from __future__ import annotations

from cerebelum.dsl.mermaid import to_mermaid
from tests.integration import workflows as w


def test_sequences_rules_and_loops_are_drawn():
    onboarding = to_mermaid(w.onboarding.blueprint).splitlines()
    assert onboarding[:2] == ["flowchart TD", "    start((start))"]
    assert "    n0_fetch_user --> n1_welcome" in onboarding
    assert "    n0_fetch_user -- age=17 --> n2_consent" in onboarding
    assert {"    n1_welcome --> finish", "    n2_consent --> finish"} <= set(onboarding)

    loop = to_mermaid(w.review_loop.blueprint).splitlines()
    assert "    n1_review -. approved=False back_to x5 .-> n0_draft" in loop
    assert "    n1_review --> finish" in loop  # the loop may end


def test_waits_and_approvals_have_their_own_shapes():
    waits = to_mermaid(w.month_wait.blueprint)
    assert 'n1_wait_30d(["wait_30d"])' in waits
    timeout = to_mermaid(w.approval_timeout_flow.blueprint)
    assert 'n1_quick_manager{{"approval: quick_manager"}}' in timeout
    assert "n1_quick_manager -- timeout --> n3_escalate" in timeout


def test_parallel_branches_fan_out_and_join():
    lines = set(to_mermaid(w.parallel.blueprint).splitlines())
    assert {
        "    n0_before --> n1_left",
        "    n0_before --> n2_right",
        "    n1_left --> n3_join",
        "    n2_right --> n3_join",
        "    n3_join --> finish",
    } <= lines
