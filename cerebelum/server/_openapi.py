"""The OpenAPI 3.1 document of the HTTP API, made from the msgspec types of :mod:`.messages`.

``python -m cerebelum.server.openapi > docs/openapi.json`` regenerates the committed copy;
a test fails when the two drift apart.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import msgspec

from cerebelum import __version__, protocol

from . import messages as m

__all__ = ["openapi_document", "openapi_text"]

_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(name=name)}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _answer(description: str, name: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: int) -> dict[str, Any]:
    why = {
        400: "The execution id cannot be stored (empty, too long, NUL, a lone surrogate).",
        401: "No valid bearer token (when the server has one).",
        404: "No execution has that id, no workflow that name, or (workers) the worker is not registered: register again.",
        409: "The request does not fit the execution's state (`InvalidRequestError`, `ExecutionStuckError`, `VersionMismatchError`).",
        422: "The body or a parameter is not valid; `error.field` names it.",
    }
    return {str(c): _answer(why[c], "ErrorBody") for c in codes}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
       "description": "The execution's id."}  # fmt: skip


def _paths() -> dict[str, Any]:
    def request(kind: str, body: str, summary: str) -> dict[str, Any]:
        return {"post": {
            "operationId": kind, "summary": summary, "parameters": [_ID],
            "requestBody": _body(body),
            "responses": {"202": _answer("Checked and handed to the execution's engine.", "Accepted"),
                          **_errors(400, 401, 404, 409, 422)},
        }}  # fmt: skip

    def worker(op: str, body: str, answer: str, summary: str) -> dict[str, Any]:
        return {"post": {
            "operationId": f"worker_{op}", "summary": summary, "tags": ["workers"],
            "security": [{"workerBearer": []}], "requestBody": _body(body),
            "responses": {"200": _answer("Done.", answer), **_errors(401, 404, 409, 422)},
        }}  # fmt: skip

    return {
        "/v1/executions": {
            "post": {
                "operationId": "start", "summary": "Start an execution (idempotent by id).",
                "requestBody": _body("StartRequest"),
                "responses": {"201": _answer("Recorded.", "Started"),
                              "200": _answer("An execution of that id existed: it, unchanged.", "Started"),
                              **_errors(401, 404, 409, 422)},
            },
            "get": {
                "operationId": "list", "summary": "Executions, newest first.",
                "parameters": [
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"enum": ["queued", "running", "waiting", "completed", "failed", "cancelled", "stuck"]}},
                    {"name": "workflow", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                ],
                "responses": {"200": _answer("The executions.", "ExecutionList"), **_errors(401, 422)},
            },
        },
        "/v1/executions/{id}": {"get": {
            "operationId": "status", "summary": "The execution's status, with its steps.",
            "parameters": [_ID],
            "responses": {"200": _answer("The execution.", "ExecutionView"), **_errors(400, 401, 404)},
        }},
        "/v1/executions/{id}/history": {"get": {
            "operationId": "history", "summary": "Every event of the execution, in order.",
            "parameters": [_ID],
            "responses": {"200": _answer("The events.", "History"), **_errors(400, 401, 404)},
        }},
        "/v1/executions/{id}/tasks": {"get": {
            "operationId": "tasks", "summary": "Its unfinished tasks: what each waits for, or who runs it.",
            "parameters": [_ID],
            "responses": {"200": _answer("The tasks.", "TaskList"), **_errors(400, 401, 404)},
        }},
        "/v1/executions/{id}/result": {"get": {
            "operationId": "result", "summary": "How the execution ended (a long-poll).",
            "parameters": [_ID, {"name": "wait", "in": "query", "required": False,
                                 "description": "Seconds to wait for the end.",
                                 "schema": {"type": "number", "minimum": 0, "maximum": 60, "default": 30}}],
            "responses": {"200": _answer("It ended.", "ResultView"),
                          "202": _answer("It had not ended within `wait`: ask again.", "Pending"),
                          **_errors(400, 401, 404, 409, 422)},
        }},
        "/v1/executions/{id}/approve": request("approve", "ApprovalRequest", "Approve an approval it waits on."),
        "/v1/executions/{id}/reject": request("reject", "ApprovalRequest", "Reject an approval it waits on."),
        "/v1/executions/{id}/signal": request("signal", "SignalRequest", "Send a signal to a code workflow."),
        "/v1/executions/{id}/cancel": request("cancel", "CancelRequest", "Cancel it and its children."),
        "/v1/executions/{id}/migrate": {"post": {
            "operationId": "migrate", "parameters": [_ID], "requestBody": _body("MigrateRequest"),
            "summary": "Move a graph execution onto the server's version of its workflow.",
            "responses": {"200": _answer("Moved, or handed to the engine that holds it.", "Migrated"),
                          **_errors(400, 401, 404, 409, 422)},
        }},
        "/v1/worker/register": worker("register", "Register", "Registered",
                                      "A worker joins: what it hosts, on which queues."),
        "/v1/worker/poll": worker("poll", "Poll", "PollResponse",
                                  "Tasks for the worker, leased to it (a long-poll)."),
        "/v1/worker/heartbeat": worker("heartbeat", "Heartbeat", "HeartbeatResponse",
                                       "Extend a task's lease; learn whether to stop it."),
        "/v1/worker/report": worker("report", "Report", "ReportResponse",
                                    "Hand back results; the answer says which to forget."),
        "/metrics": {"get": {
            "operationId": "metrics",
            "summary": "The engine's metrics, in the Prometheus text format (docs/observability.md).",
            "responses": {"200": {"description": "Prometheus text format 0.0.4",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_errors(401, 404)},
        }},
        "/healthz": {"get": {
            "operationId": "health", "summary": "The server answers.", "security": [],
            "responses": {"200": {"description": "`{\"status\": \"ok\"}`"}},
        }},
    }  # fmt: skip


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document: the endpoints, and the task protocol's schemas beside them."""
    roots = [getattr(m, name) for name in m.__all__]
    _, components = msgspec.json.schema_components(roots, ref_template=_REF)
    for name, schema in protocol.json_schema()["$defs"].items():
        text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
        components.setdefault(name, json.loads(text))
    for component in components.values():  # docstrings keep their indentation in msgspec's
        if "description" in component:
            component["description"] = inspect.cleandoc(component["description"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cerebelum",
            "version": __version__,
            "description": "Start, watch and steer durable workflow executions over HTTP.",
        },
        "paths": _paths(),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "CEREBELUM_TOKEN, for clients.",
                },
                "workerBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "CEREBELUM_WORKER_TOKEN, for workers.",
                },
            },
        },
        "security": [{"bearer": []}],
    }


def openapi_text() -> str:
    """:func:`openapi_document` as the text ``docs/openapi.json`` holds."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
