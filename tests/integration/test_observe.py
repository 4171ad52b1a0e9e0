"""Metrics, traces and logs of a real engine on a real store (docs/observability.md)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cerebelum import Engine, InvalidRequestError, approval, step, workflow
from cerebelum import events as ev
from cerebelum.errors import CerebelumError
from cerebelum.observe import JsonFormatter, LogContext, Observer
from cerebelum.server import serving
from cerebelum.worker import Worker

from .observed_workflows import obs_double, obs_doubler, obs_exploding, obs_pipeline

ROOT = Path(__file__).resolve().parents[2]


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def tracer() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def traceparent(span) -> str:
    c = span.context
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_count_executions_attempts_and_commits(store_url):
    async with Engine(store_url, metrics=True) as engine:
        assert isinstance(engine.metrics, CollectorRegistry)
        done = await (await engine.start(obs_pipeline, {"n": 1})).result()
        failed = await (await engine.start(obs_exploding, {})).result()
        doubled = await (await engine.start(obs_doubler, 4)).result()
        assert (done.status, done.output, failed.status, doubled.output) == (
            "completed", 2, "failed", 8,
        )  # fmt: skip
        got = samples(await engine.metrics_text())
    started = "cerebelum_executions_started_total"
    ended = "cerebelum_executions_ended_total"
    assert got[(started, (("workflow", "obs_pipeline"),))] == 1
    assert got[(ended, (("status", "completed"), ("workflow", "obs_pipeline")))] == 1
    assert got[(ended, (("status", "failed"), ("workflow", "obs_exploding")))] == 1
    assert got[(ended, (("status", "completed"), ("workflow", "obs_doubler")))] == 1
    steps = "cerebelum_step_attempt_seconds_count"
    flaky = (("workflow", "obs_pipeline"), ("step", "flaky"))
    assert got[(steps, tuple(sorted((*flaky, ("outcome", "failed")))))] == 1
    assert got[(steps, tuple(sorted((*flaky, ("outcome", "completed")))))] == 1
    activities = "cerebelum_activity_attempt_seconds_count"
    key = (("activity", "obs_double"), ("outcome", "completed"), ("workflow", "obs_doubler"))
    assert got[(activities, key)] == 1
    assert got[("cerebelum_commit_seconds_count", ())] >= 3
    events = got[("cerebelum_commit_events_sum", ())]
    assert events >= got[("cerebelum_commit_executions_sum", ())] >= 3
    assert got[("cerebelum_executions_in_memory", ())] == 0
    assert got[("cerebelum_workers", ())] == 0


async def test_each_engine_has_its_own_registry_or_the_one_it_is_given(sqlite_url, tmp_path):
    registry = CollectorRegistry()
    async with (
        Engine(sqlite_url, metrics=registry) as one,
        Engine(f"sqlite:///{tmp_path / 'two.db'}", metrics=True) as two,
    ):
        assert one.metrics is registry and two.metrics is not registry
        await (await one.start(obs_pipeline, {"n": 1})).result()
        key = ("cerebelum_executions_started_total", (("workflow", "obs_pipeline"),))
        assert samples(await one.metrics_text())[key] == 1
        assert key not in samples(await two.metrics_text())
    async with Engine(sqlite_url) as quiet:
        assert quiet.metrics is None
        with pytest.raises(CerebelumError, match=r"Engine\(metrics=True\)"):
            await quiet.metrics_text()
    with pytest.raises(InvalidRequestError, match="CollectorRegistry"):
        Engine(sqlite_url, metrics="yes")


async def test_the_server_serves_metrics_behind_the_client_token(sqlite_url):
    async with (
        Engine(sqlite_url, dispatch="workers", metrics=True) as engine,
        serving(engine, token="secret") as url,
    ):
        worker = Worker(url, workflows=[obs_pipeline], activities=[obs_double], poll_wait=0.5)
        running = asyncio.create_task(worker.run())
        handle = await engine.start(obs_doubler, 3)  # no worker hosts the workflow: it waits
        done = await (await engine.start(obs_pipeline, {"n": 5})).result()
        assert done.output == 6
        async with httpx.AsyncClient(base_url=url) as http:
            refused = await http.get("/metrics")
            answer = await http.get("/metrics", headers={"authorization": "Bearer secret"})
        worker.stop()
        await running
        assert refused.status_code == 401
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        got = samples(answer.content)
        assert got[("cerebelum_workers", ())] == 1
        assert got[("cerebelum_tasks", (("queue", "default"), ("state", "ready")))] == 1
        assert got[("cerebelum_tasks", (("queue", "default"), ("state", "leased")))] == 0
        assert got[("cerebelum_executions_in_memory", ())] == 1
        assert (await engine.status(handle.id)).status == "running"


async def test_metrics_on_an_engine_without_them_answer_404(sqlite_url):
    async with (
        Engine(sqlite_url) as engine,
        serving(engine) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        answer = await http.get("/metrics")
    assert answer.status_code == 404
    assert "Engine(metrics=True)" in answer.json()["error"]["message"]


# --- traces ----------------------------------------------------------------------------------


async def test_spans_for_an_execution_and_each_attempt(store_url):
    provider, exporter = tracer()
    async with Engine(store_url, tracing=provider) as engine:
        handle = await engine.start(obs_pipeline, {"n": 1})
        assert (await handle.result()).output == 2
        history = await handle.history()
    spans = {
        (s.name, s.attributes.get("cerebelum.attempt")): s for s in exporter.get_finished_spans()
    }
    root = spans[("execution obs_pipeline", None)]
    assert root.parent is None
    assert dict(root.attributes) == {
        "cerebelum.execution_id": handle.id, "cerebelum.workflow": "obs_pipeline",
        "cerebelum.resumed": False, "cerebelum.status": "completed",
    }  # fmt: skip
    trace_id = root.context.trace_id
    assert history[0].trace == traceparent(root)
    first, second = spans[("step flaky", 1)], spans[("step flaky", 2)]
    for span in (spans[("step fetch", 1)], first, second):
        assert span.context.trace_id == trace_id
        assert span.parent.span_id == root.context.span_id
        assert span.attributes["cerebelum.execution_id"] == handle.id
        assert span.attributes["cerebelum.workflow"] == "obs_pipeline"
    assert first.attributes["cerebelum.step"] == "flaky"
    assert first.attributes["cerebelum.outcome"] == "failed"
    assert first.status.status_code is StatusCode.ERROR
    (exc,) = [e for e in first.events if e.name == "exception"]
    assert exc.attributes["exception.type"] == "builtins.ConnectionError"
    assert exc.attributes["exception.message"] == "first try fails"
    assert second.attributes["cerebelum.outcome"] == "completed"
    assert second.status.status_code is StatusCode.UNSET


async def test_a_step_s_own_spans_and_a_child_execution_join_the_trace(sqlite_url):
    provider, exporter = tracer()
    inner_tracer = provider.get_tracer("user-code")

    @step
    async def traced_work(context, inputs):
        with inner_tracer.start_as_current_span("user work"):
            return inputs

    @workflow
    def obs_traced(wf):
        wf.timeline(traced_work)

    async with Engine(sqlite_url, workflows=[obs_traced, obs_doubler], tracing=provider) as e:
        with inner_tracer.start_as_current_span("caller") as caller:
            handle = await e.start(obs_traced, {"x": 1})
        await handle.result()
        await (await e.start(obs_doubler, 2)).result()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root, attempt, mine = (spans["execution obs_traced"], spans["step traced_work"],
                           spans["user work"])  # fmt: skip
    assert root.parent.span_id == caller.get_span_context().span_id  # started under a span
    assert attempt.parent.span_id == root.context.span_id
    assert mine.parent.span_id == attempt.context.span_id
    activity = spans["activity obs_double"]
    assert activity.parent.span_id == spans["execution obs_doubler"].context.span_id
    assert activity.attributes["cerebelum.activity"] == "obs_double"


class Dispatched(Observer):
    """Keeps the tasks the engine hands to workers."""

    def __init__(self) -> None:
        self.tasks: list = []

    def on_dispatch(self, task):
        self.tasks.append(task)
        return task


async def test_a_remote_worker_s_spans_are_children_of_the_execution_s(store_url):
    engine_side, engine_spans = tracer()
    worker_side, worker_spans = tracer()  # another provider: as in another process
    seen = Dispatched()
    async with (
        Engine(store_url, dispatch="workers", tracing=engine_side, observers=[seen]) as engine,
        serving(engine) as url,
    ):
        worker = Worker(url, workflows=[obs_pipeline], activities=[obs_double], poll_wait=0.5,
                        tracing=worker_side)  # fmt: skip
        running = asyncio.create_task(worker.run())
        handle = await engine.start(obs_pipeline, {"n": 1})
        assert (await handle.result()).output == 2
        worker.stop()
        await running
    (root,) = engine_spans.get_finished_spans()
    parent = traceparent(root)
    assert [t.traceparent for t in seen.tasks] == [parent] * 3  # fetch, flaky twice
    attempts = sorted(worker_spans.get_finished_spans(), key=lambda s: s.start_time)
    assert [(s.name, s.attributes["cerebelum.attempt"]) for s in attempts] == [
        ("step fetch", 1), ("step flaky", 1), ("step flaky", 2),
    ]  # fmt: skip
    for span in attempts:
        assert span.context.trace_id == root.context.trace_id
        assert span.parent.span_id == root.context.span_id and span.parent.is_remote
        assert span.attributes["cerebelum.execution_id"] == handle.id
    assert attempts[1].status.status_code is StatusCode.ERROR


async def test_an_execution_resumed_by_another_engine_stays_in_its_trace(store_url):
    provider, exporter = tracer()

    @step
    async def obs_ask(context, inputs):
        return 1

    gate = approval("obs_gate")

    @workflow
    def obs_gated(wf):
        wf.timeline(obs_ask >> gate)

    async with Engine(store_url, workflows=[obs_gated], tracing=provider) as first:
        handle = await first.start(obs_gated, {})
        while not any(isinstance(e, ev.ApprovalRequested) for e in await handle.history()):
            await asyncio.sleep(0.01)
    (stint,) = [s for s in exporter.get_finished_spans() if s.name.startswith("execution")]
    assert stint.attributes["cerebelum.status"] == "running"  # it left with the engine
    async with Engine(store_url, workflows=[obs_gated], tracing=provider) as second:
        await second.approve(handle.id, "obs_gate")
        assert (await second.result(handle.id, timeout=10)).status == "completed"
    resumed = [s for s in exporter.get_finished_spans() if s.name.startswith("execution")][1]
    assert resumed.attributes["cerebelum.resumed"] is True
    assert resumed.attributes["cerebelum.status"] == "completed"
    assert resumed.context.trace_id == stint.context.trace_id
    assert resumed.parent.span_id == stint.context.span_id


def test_without_opentelemetry_nothing_imports_it_and_tracing_says_what_to_install(tmp_path):
    script = f"""
import asyncio, sys
sys.modules["opentelemetry"] = None  # as if it were not installed
from cerebelum import Engine, CerebelumError
from cerebelum.worker import Worker
from tests.integration.observed_workflows import obs_pipeline

async def main():
    async with Engine({str(tmp_path / "x.db")!r}, metrics=True) as engine:
        await (await engine.start(obs_pipeline, {{"n": 1}})).result()
    for make in (lambda: Engine(tracing=True), lambda: Worker("http://x", tracing=True)):
        try:
            make()
        except CerebelumError as exc:
            print(exc)
asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    ran = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[-1] == "['opentelemetry']"  # only the blocker put there above
    assert (
        lines[:2]
        == ["tracing needs OpenTelemetry, which is not installed: pip install 'cerebelum[otel]'"]
        * 2
    )


# --- logs ------------------------------------------------------------------------------------


async def test_log_lines_carry_the_execution_step_and_attempt(sqlite_url):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContext())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with Engine(sqlite_url) as engine:
            handle = await engine.start(obs_pipeline, {"n": 7})
            await handle.result()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("execution_id") == handle.id]
    fetching = next(line for line in mine if line["logger"] == "tests.observed")
    assert fetching["message"] == "fetching 7"
    assert (fetching["workflow"], fetching["step"], fetching["attempt"]) == (
        "obs_pipeline", "fetch", 1,
    )  # fmt: skip
    failed = next(line for line in mine if line["level"] == "WARNING")
    assert failed["logger"] == "cerebelum.engine"
    assert (failed["step"], failed["attempt"]) == ("flaky", 1)
    assert "first try fails" in failed["message"]
    assert {"time", "level", "logger", "message"} <= set(failed)


def test_cerebelum_server_logs_json_lines(sqlite_url):
    from .servers import environment, free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cerebelum", "server", "tests.integration.observed_workflows",
         "--db", sqlite_url, "--dispatch", "local", "--port", str(port), "--log-format", "json"],
        cwd=ROOT, env=environment(None), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            subprocess.run(["sleep", "0.05"])
        started = httpx.post(f"{url}/v1/executions", json={"workflow": "obs_exploding"})
        eid = started.json()["id"]
        result = httpx.get(f"{url}/v1/executions/{eid}/result", params={"wait": 20}, timeout=30)
        assert result.json()["status"] == "failed"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    failures = [line for line in lines if line.get("execution_id") == eid]
    assert {(line["level"], line.get("step")) for line in failures} == {
        ("WARNING", "explode"), ("WARNING", None),
    }  # fmt: skip
    assert all(line["workflow"] == "obs_exploding" for line in failures)
