"""Workflows of the fault and concurrency tests (module level, so that names are stable)."""

from __future__ import annotations

import asyncio

from cerebelum import approval, sleep, step, workflow

gate = asyncio.Event()  # steps of `gated` wait for it: the test decides when they return


@step
async def gated_step(ctx, inputs):
    await gate.wait()
    return inputs


@workflow
def gated(wf):
    wf.timeline(gated_step)


@step
async def quick(ctx, inputs):
    return inputs


@workflow
def quick_flow(wf):
    wf.timeline(quick)


sign_off = approval("sign_off")


@step
async def after_sign_off(ctx, sign_off):
    return sign_off["approved"]


@workflow
def sign_off_flow(wf):
    wf.timeline(quick >> sign_off >> after_sign_off)


@workflow
async def napper(n: int) -> int:
    await sleep(hours=1)
    return n
