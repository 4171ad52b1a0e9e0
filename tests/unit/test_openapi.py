"""The HTTP API's OpenAPI document: committed as docs/openapi.json, made from the types."""

from __future__ import annotations

import json
from pathlib import Path

from cerebelum import protocol
from cerebelum.server.openapi import openapi_document, openapi_text

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_committed_document_is_current():
    # regenerate with: python -m cerebelum.server.openapi > docs/openapi.json
    assert (DOCS / "openapi.json").read_text() == openapi_text()


def test_every_reference_resolves_and_the_protocol_is_included():
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    assert set(protocol.json_schema()["$defs"]) <= set(schemas)
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    prefix = "#/components/schemas/"
    assert refs and all(r.startswith(prefix) and r[len(prefix) :] in schemas for r in refs)
    assert json.loads(openapi_text()) == doc
