"""Workflows that ``cerebelum server`` runs in the server tests (module level: stable names)."""

from __future__ import annotations

import asyncio

from cerebelum import approval, signal, step, workflow


@step
async def fetch_user(context, inputs):
    return {"id": inputs["user_id"]}


manager = approval("manager")


@step
async def grant_access(context, fetch_user, manager):
    return {"user": fetch_user["id"], "granted": manager["approved"]}


@workflow
def access_request(wf):
    wf.timeline(fetch_user >> manager >> grant_access)


@step
async def slow(context, inputs):
    await asyncio.sleep(60)


@workflow
def slow_report(wf):
    wf.timeline(slow)


@workflow
async def greeter(name: str, punctuation: str = "!"):
    greeting = await signal("greeting")
    return f"{greeting}, {name}{punctuation}"


@workflow
def fetch_user_only(wf):
    wf.timeline(fetch_user)
