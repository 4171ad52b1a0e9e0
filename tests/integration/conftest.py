from __future__ import annotations

import pytest

from cerebelum import Engine
from tests.integration.servers import Process, environment


@pytest.fixture
async def engine(store_url):
    async with Engine(store_url, poll_interval=0.05) as e:
        yield e


# --- the tests that run server and worker processes (test_workers, test_typescript_worker)


@pytest.fixture
def scratch(tmp_path):
    """A folder where the workers' steps log their runs (``runs.log``)."""
    d = tmp_path / "runs"
    d.mkdir()
    return d


@pytest.fixture
def env(scratch):
    """The environment of the processes: this checkout, and the scratch folder."""
    e = environment(None)
    e["WORKER_TEST_DIR"] = str(scratch)
    return e


@pytest.fixture
def procs():
    """The processes a test starts: killed at its end, whatever happened."""
    started: list[Process] = []
    yield started
    for proc in started:
        proc.stop_quietly()
