from __future__ import annotations

import pytest

from cerebelum import Engine


@pytest.fixture
async def engine(store_url):
    async with Engine(store_url, poll_interval=0.05) as e:
        yield e
