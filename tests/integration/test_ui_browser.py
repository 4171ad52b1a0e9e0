"""The web UI in a real browser (headless Chromium) against a real ``cerebelum server``.

Skipped where /usr/bin/chromium or Playwright is missing, except under ``CI=true``,
where that fails. ``CEREBELUM_UI_SCREENSHOTS=docs/ui`` also saves the docs' screenshots.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import httpx
import pytest

from .ui_browser import (
    CHROMIUM,
    NOTE,
    browser,
    run_examples,
    run_on_workers,
    screenshots,
    settle,
    start,
    ui_server,
    with_worker,
)

pytestmark = pytest.mark.timeout(120)

if not (os.path.exists(CHROMIUM) and importlib.util.find_spec("playwright")):
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"the browser tests need {CHROMIUM} and playwright (CI=true)")
    pytest.skip(f"no {CHROMIUM} or no playwright", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("ui") / "ui.db"
    with ui_server(str(db)) as url:
        run_examples(url)
        yield url


@pytest.fixture(scope="module")
def chromium():
    with browser() as b:
        yield b


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: errors.append(f"a browser dialog opened: {d.message}"))
    yield page
    context.close()
    assert errors == []


def states(page) -> dict[str, str]:
    nodes = page.locator("svg.graph g.node")
    return {
        nodes.nth(i).get_attribute("data-node"): nodes.nth(i).get_attribute("data-state")
        for i in range(nodes.count())
    }


def test_the_executions_page_lists_filters_and_links_each_execution(server, page):
    page.goto(server + "/")
    page.wait_for_selector("tr[data-id='review-1']")
    rows = page.locator("tbody tr")
    seen = {rows.nth(i).get_attribute("data-id"): rows.nth(i).locator("[data-status]").inner_text()
            for i in range(rows.count())}  # fmt: skip
    assert seen == {"pipeline-1": "completed", "broken-1": "failed", "review-1": "waiting",
                    "code-1": "completed"}  # fmt: skip
    page.select_option("select[name=status]", "failed")
    page.wait_for_function("document.querySelectorAll('tbody tr').length === 1")
    assert page.locator("tbody tr").get_attribute("data-id") == "broken-1"
    assert "status=failed" in page.url
    page.select_option("select[name=status]", "")
    page.fill("input[name=id]", "pipe")
    page.click("button[type=submit]")
    page.wait_for_function("document.querySelectorAll('tbody tr').length === 1")
    page.click("tbody a")
    page.wait_for_url(re.compile(r"/executions/pipeline-1$"))


def test_a_completed_graph_execution_shows_every_node_done_and_its_output(server, page):
    page.goto(server + "/executions/pipeline-1")
    page.wait_for_selector("#output")
    assert states(page) == {"load": "done", "count": "done", "total": "done", "report": "done"}
    assert page.locator("h1 [data-status]").inner_text() == "completed"
    assert page.locator("ol.history li").first.get_attribute("data-type") == "ExecutionStarted"
    assert page.locator("ol.history li").last.get_attribute("data-type") == "ExecutionCompleted"
    page.locator("ol.history li").last.locator("summary").click()
    assert '"count": 3' in page.locator("ol.history li").last.locator("pre").inner_text()


def test_a_result_holding_markup_is_shown_as_text_and_never_run(server, page):
    page.goto(server + "/executions/pipeline-1")
    page.wait_for_selector("#output")
    assert NOTE in page.locator("#output pre").inner_text()
    assert page.get_by_text(NOTE).first.is_visible()
    # the page's own module script is the only script element: nothing was injected
    assert page.evaluate("[...document.scripts].map(s => s.src)") == [
        f"{server}/ui/static/execution.js"
    ]


def test_a_failed_execution_shows_its_error_its_traceback_and_the_failed_node(server, page):
    page.goto(server + "/executions/broken-1")
    page.wait_for_selector("#error")
    assert states(page) == {"load": "done", "explode": "failed"}
    error = page.locator("#error").inner_text()
    assert "cannot ship [1, 2, 3]" in error and "explode" in error
    assert "ValueError" in page.locator("#error pre.traceback").inner_text()
    assert page.locator("[data-action]").count() == 0  # it has ended: no actions


def test_a_code_execution_shows_its_activities_as_a_timeline(server, page):
    page.goto(server + "/executions/code-1")
    page.wait_for_selector("table.timeline")
    rows = page.locator("table.timeline tbody tr")
    assert [rows.nth(i).get_attribute("data-state") for i in range(rows.count())] == [
        "done",
        "done",
    ]
    assert "double" in rows.first.inner_text()
    assert page.locator("#output pre").inner_text() == "12"


def test_approving_from_the_inbox_and_watching_the_execution_finish_without_a_reload(server, page):
    start(server, "ui_review", "review-2", input={})
    settle(server, "review-2", "waiting")
    page.goto(server + "/approvals")
    row = page.locator("tr[data-id='review-2'][data-name='manager']")
    row.wait_for()
    assert "never" in row.inner_text()  # no timeout
    page.goto(server + "/executions/review-2")
    page.wait_for_selector("svg.graph g.node")
    assert states(page) == {"load": "done", "count": "done", "total": "done",
                            "escalate": "skipped", "manager": "waiting", "publish": "not reached"}  # fmt: skip
    assert page.locator("text.edge-label").text_content() == "note='urgent'"
    page.evaluate("window.stillTheSamePage = true")
    page.click("[data-action=approve][data-name=manager]")
    page.fill("#confirm textarea[name=data]", '{"by": "ann"}')
    page.click("#confirm-ok")
    page.wait_for_selector("h1 [data-status=completed]")
    assert states(page) == {"load": "done", "count": "done", "total": "done",
                            "escalate": "skipped", "manager": "done", "publish": "done"}  # fmt: skip
    assert page.evaluate("window.stillTheSamePage") is True
    assert '"by": "ann"' in page.locator("#output pre").inner_text()
    types = page.locator("ol.history li").evaluate_all("els => els.map(e => e.dataset.type)")
    assert "ApprovalResolved" in types and types[-1] == "ExecutionCompleted"
    page.goto(server + "/approvals")
    page.wait_for_selector("tbody")
    assert page.locator("tr[data-id='review-2']").count() == 0


def test_an_open_page_follows_a_decision_made_elsewhere(server, page):
    start(server, "ui_review", "review-3", input={})
    settle(server, "review-3", "waiting")
    page.goto(server + "/executions/review-3")
    page.wait_for_selector("g.node[data-node=manager][data-state=waiting]")
    page.evaluate("window.stillTheSamePage = true")
    answer = httpx.post(f"{server}/v1/executions/review-3/reject", json={"name": "manager"})
    assert answer.status_code == 202
    page.wait_for_selector("h1 [data-status=completed]")  # the stream told it, nothing else
    assert page.locator("g.node[data-node=manager]").get_attribute("data-state") == "done"
    assert "rejected" in page.locator("g.node[data-node=manager] text.state").text_content()
    assert page.evaluate("window.stillTheSamePage") is True


def test_cancelling_asks_first_and_then_ends_the_execution(server, page):
    start(server, "ui_review", "review-4", input={})
    settle(server, "review-4", "waiting")
    page.goto(server + "/executions/review-4")
    page.click("[data-action=cancel]")
    page.click("#confirm button[value=cancel]")  # changed my mind: nothing is sent
    assert httpx.get(f"{server}/v1/executions/review-4").json()["status"] == "waiting"
    page.click("[data-action=cancel]")
    page.fill("#confirm input[name=reason]", "not needed")
    page.click("#confirm-ok")
    page.wait_for_selector("h1 [data-status=cancelled]")
    assert httpx.get(f"{server}/v1/executions/review-4").json()["status"] == "cancelled"


def test_a_signal_is_sent_with_its_json_payload_after_confirming(server, page):
    start(server, "ui_greeter", "greeter-1", args=["ann"])
    settle(server, "greeter-1", "waiting")
    page.goto(server + "/executions/greeter-1")
    page.wait_for_selector("table.timeline tr[data-state=waiting]")
    page.click("[data-action=signal]")
    page.fill("#confirm input[name=signal]", "greeting")
    page.fill("#confirm textarea[name=payload]", "{not json")
    page.click("#confirm-ok")
    assert "Payload is not JSON" in page.locator("#confirm-error").inner_text()  # nothing sent
    page.fill("#confirm textarea[name=payload]", '{"word": "hello"}')
    page.click("#confirm-ok")
    page.wait_for_selector("h1 [data-status=completed]")
    assert page.locator("#output pre").inner_text() == '"hello, ann"'


def test_the_workers_page_says_that_this_server_runs_the_steps_itself(server, page):
    page.goto(server + "/workers")
    page.wait_for_selector("main .empty")
    assert "dispatch local" in page.locator("main").inner_text()


def test_the_workers_page_shows_workers_queues_and_tasks_in_flight(tmp_path, page):
    with ui_server(str(tmp_path / "w.db"), dispatch="workers") as url, with_worker(url):
        run_on_workers(url)
        page.goto(url + "/workers")
        page.wait_for_selector("table.tasks")
        worker = page.locator("table.workers tbody tr")
        assert worker.count() == 1 and "default, reports" in worker.inner_text()
        assert "slow_report" in worker.inner_text()  # what it hosts
        reports = page.locator("tr[data-queue=reports] td").all_inner_texts()
        assert reports == ["reports", "0", "0", "1"]  # ready, delayed, leased
        assert page.locator("tr[data-queue=gpu] td").all_inner_texts() == ["gpu", "1", "0", "0"]
        nightly = page.locator("tr[data-execution-queue=nightly]").inner_text()
        assert "2" in nightly and "10 per 1 min" in nightly
        tasks = page.locator("table.tasks tbody tr")
        texts = [tasks.nth(i).inner_text() for i in range(tasks.count())]
        assert any("render" in t and "no connected worker hosts it" in t for t in texts)
        assert any("slow_report" in t and "leased" in t for t in texts)
        page.goto(url + "/executions/slow-1")
        page.wait_for_selector("ul.tasks li")
        assert "running on worker" in page.locator("ul.tasks li").inner_text()
        assert (
            page.locator("g.node[data-node=slow_report]").get_attribute("data-state") == "running"
        )


def test_an_unknown_execution_is_a_404_page(server, page):
    answer = page.goto(server + "/executions/no-such-id")
    assert answer.status == 404
    assert "no-such-id" in page.locator("main").inner_text()


def test_with_a_token_the_page_asks_for_it_once_and_the_api_refuses_calls_without_it(
    tmp_path, chromium
):
    with ui_server(str(tmp_path / "t.db"), token="s3cret") as url:
        start(url, "ui_code", "code-t", "s3cret", args=[1])
        assert httpx.get(f"{url}/ui/api/executions").status_code == 401
        assert httpx.get(f"{url}/ui/api/executions/code-t/events").status_code == 401
        context = chromium.new_context()
        page = context.new_page()
        page.goto(url + "/")
        page.fill("#login-token", "wrong")
        page.click("#login button")
        page.wait_for_selector("#login-error:has-text('refused')")
        page.fill("#login-token", "s3cret")
        page.click("#login button")
        page.wait_for_selector("tr[data-id='code-t']")
        page.click("tr[data-id='code-t'] a")  # the next page uses the token kept in the tab
        page.wait_for_selector("table.timeline")
        assert not page.locator("#login").is_visible()
        context.close()


def test_the_screenshots_of_the_docs(tmp_path, chromium):
    folder = Path(os.environ.get("CEREBELUM_UI_SCREENSHOTS") or tmp_path)
    saved = screenshots(folder, chromium)
    assert [p.name for p in saved] == [
        "executions.png", "execution-graph.png", "execution-failed.png", "execution-code.png",
        "approvals.png", "workers.png",
    ]  # fmt: skip
    assert all(p.stat().st_size > 5000 for p in saved)
