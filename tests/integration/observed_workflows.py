"""Workflows the observability tests run, in-process and in a ``cerebelum server``."""

from __future__ import annotations

import logging

from cerebelum import Retry, activity, step, workflow

logger = logging.getLogger("tests.observed")


@step
async def fetch(context, inputs):
    logger.info("fetching %s", inputs["n"])  # a step's own log line
    return inputs["n"]


@step(retry=Retry(max_attempts=2, initial=0.01))
async def flaky(context, fetch):
    if context.attempt == 1:
        raise ConnectionError("first try fails")
    return fetch + 1


@workflow
def obs_pipeline(wf):
    wf.timeline(fetch >> flaky)


@step
async def explode(context, inputs):
    raise RuntimeError("boom")


@workflow
def obs_exploding(wf):
    wf.timeline(explode)


@activity
async def obs_double(x: int) -> int:
    return 2 * x


@workflow
async def obs_doubler(x: int) -> int:
    return await activity(obs_double, x)
