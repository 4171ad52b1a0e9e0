from __future__ import annotations

from cerebelum.dsl.mermaid import to_mermaid
from tests.integration import cli_workflows as cw
from tests.integration import workflows as w


def lines_of(wf) -> list[str]:
    return to_mermaid(wf.blueprint).splitlines()


def test_sequences_rules_and_loops_are_drawn():
    onboarding = lines_of(w.onboarding)
    assert onboarding[:2] == ["flowchart TD", '    start(("start"))']
    assert '    finish(("end"))' in onboarding
    assert "    start --> n0_fetch_user" in onboarding
    assert "    n0_fetch_user --> n1_welcome" in onboarding
    assert '    n0_fetch_user -->|"age=17"| n2_consent' in onboarding
    assert {"    n1_welcome --> finish", "    n2_consent --> finish"} <= set(onboarding)

    loop = lines_of(w.review_loop)
    assert '    n1_review -.->|"approved=False back_to x5"| n0_draft' in loop
    assert "    n1_review --> finish" in loop  # the loop may end


def test_waits_and_approvals_have_their_own_shapes():
    waits = lines_of(w.month_wait)
    assert '    n1_wait_30d(["wait_30d"])' in waits
    assert "    n0_before -.-> n2_after_wait" in waits  # data, not sequence
    timeout = lines_of(w.approval_timeout_flow)
    assert '    n1_quick_manager{{"approval: quick_manager<br/>times out after 0.05s"}}' in timeout
    assert '    n1_quick_manager -->|"timeout"| n3_escalate' in timeout


def test_parallel_branches_fan_out_and_join():
    lines = set(lines_of(w.parallel))
    assert {
        "    n0_before --> n1_left",
        "    n0_before --> n2_right",
        "    n1_left --> n3_join",
        "    n2_right --> n3_join",
        "    n3_join --> finish",
    } <= lines


def test_every_flow_action_has_its_edge():
    lines = lines_of(cw.everything)
    for expected in [
        '    n0_fetch -->|"rate_limited retry x3"| n0_fetch',  # the same step again
        '    n0_fetch_fail1>"fail: bad input"]',  # a fail rule ends on a flag
        '    n0_fetch -->|"ValueError"| n0_fetch_fail1',
        '    n0_fetch -->|"partial=True"| n1_repair',  # a chain that rejoins the timeline
        "    n1_repair --> n2_check",
        '    n0_fetch -->|"nothing_to_check skip_to"| n8_end',
        '    n0_fetch -->|"warning proceed"| n2_check',  # on along the timeline
        '    n2_check -->|"is_big"| n4_big',  # a two-way branch
        '    n2_check -->|"otherwise"| n5_small',
        '    n3_boss{{"approval: boss<br/>times out after 2d"}}',
        '    n3_boss -->|"timeout"| n7_audit',
        '    n6_wait_1h(["wait_1h"])',
        '    n8_end -.->|"again=True back_to x3"| n0_fetch',
        '    n8_end["end"]',
    ]:
        assert expected in lines, expected
    # every node is declared before the edges that use it, and the output ends cleanly
    assert to_mermaid(cw.everything.blueprint).endswith("    n8_end --> finish\n")


def test_labels_are_quoted_so_any_text_is_safe():
    from cerebelum import step, workflow
    from cerebelum.dsl import fail

    @step
    async def quoting_first(ctx, inputs):
        return inputs

    @step
    async def quoting_second(ctx, quoting_first):
        return 1

    @workflow
    def quoting(wf):
        wf.timeline(quoting_first)
        wf.diverge(quoting_first).when({"a": 'x|y"<z>'}, target=quoting_second).when(
            "no", target=fail('say "no" & <stop>')
        )

    text = to_mermaid(quoting.blueprint)
    assert '-->|"a=x#124;y#quot;#lt;z#gt;"| n1_quoting_second' in text
    assert '>"fail: say #quot;no#quot; #amp; #lt;stop#gt;"]' in text
    assert "|" not in text.replace('|"', "").replace('"|', "")
