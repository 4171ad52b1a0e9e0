"""Schemathesis against a real ``cerebelum server``: whatever its OpenAPI document allows,
and what it does not, is answered without a 5xx.

The server process runs on a throw-away SQLite store (with the server tests' workflows,
its steps handed to workers, of which there are none: nothing here needs one to run).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cerebelum.server._openapi import openapi_document
from tests.integration.servers import free_port, server_process

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'cerebelum.db'}"
    proc, url = server_process(db, "tests.integration.server_workflows", free_port())
    yield url
    proc.stop()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, server_url):
    # long-polls answer at once (202, or no tasks) when their wait is short: keep it short
    # (the wait left out means the default, 30 s)
    path = case.operation.path
    if path.endswith("/result") and isinstance(case.query, dict):
        wait = case.query.get("wait", 30)
        case.query["wait"] = min(wait, 0.2) if isinstance(wait, int | float) else wait
    if path in ("/v1/worker/poll", "/v1/executions") and isinstance(case.body, dict):
        wait = case.body.get("wait", 30 if path.endswith("poll") else 0)
        case.body["wait"] = min(wait, 0.2) if isinstance(wait, int | float) else wait
    response = case.call(base_url=server_url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
