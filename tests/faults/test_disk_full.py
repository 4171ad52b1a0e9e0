"""SQLite on a disk that fills up: say so and where, keep every execution, go on once
there is room again.

The store lives on a small tmpfs the test mounts (root only; skipped elsewhere, a
failure under ``CI=true``), filled to the last byte by a file the test then deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from cerebelum import Engine, StoreError, StoreFullError

from ..integration import trust_workflows as tw

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                       check=True, capture_output=True, text=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = f"cannot mount a tmpfs (needs root): {getattr(exc, 'stderr', '') or exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):  # until no byte more fits
            while True:
                f.write(b"\0" * 4096)
        with contextlib.suppress(OSError):
            f.write(b"\0" * 512)
    return filler


async def test_a_full_disk_is_named_and_nothing_is_dropped(small_disk, caplog):
    db = small_disk / "cerebelum.db"
    tw.gate.clear()
    async with Engine(db, poll_interval=0.02) as engine:
        handles = [await engine.start(tw.gated, {"n": i}) for i in range(20)]
        await engine.execute(tw.quick_flow, {"n": "before"})  # its blueprint is kept already
        filler = fill(small_disk)
        with caplog.at_level("WARNING", logger="cerebelum.engine"):
            tw.gate.set()  # the steps return now; their results cannot be written
            with pytest.raises(StoreFullError) as refused:
                await engine.start(tw.quick_flow, {"n": "new"}, id="while-full")
            message = str(refused.value)
            assert "disk is full" in message and str(small_disk) in message
            assert await engine.store.get("while-full") is None
            await asyncio.sleep(0.5)
            assert len(engine._runs) == 20  # kept, waiting for room
            assert any("disk is full" in r.message for r in caplog.records)
        filler.unlink()  # room again: every execution goes on
        results = [await h.result(timeout=30) for h in handles]
        assert [r.output for r in results] == [{"n": i} for i in range(20)]
        assert (await engine.execute(tw.quick_flow, {"n": "after"})).output == {"n": "after"}


async def test_opening_a_store_on_a_full_disk_is_a_store_error_naming_it(small_disk):
    filler = fill(small_disk)
    with pytest.raises(StoreError) as refused:
        async with Engine(small_disk / "new.db"):
            pass
    assert str(small_disk) in str(refused.value)
    filler.unlink()
