"""The storage contract, checked on both real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import replace as dataclass_replace

import asyncpg
import pytest

from cerebelum import Engine
from cerebelum import events as ev
from cerebelum.errors import StoreError, StoreUnavailableError
from cerebelum.store import ExecutionRecord, TaskCounts, TaskRow, Write, _sql, open_store
from cerebelum.store.postgres import PostgresStore, mask_url

NOW = 1_700_000_000.0


def record(eid: str, status: str = "running", workflow: str = "wf", version: str = "v1",
           owner: str | None = "engine-a", at: float = NOW) -> ExecutionRecord:  # fmt: skip
    return ExecutionRecord(
        id=eid, workflow=workflow, version=version, kind="graph", status=status,
        inputs=b'{"n":1}', output=None, error=None, parent_id=None, owner=owner,
        created_at=at, updated_at=at,
    )  # fmt: skip


def start(eid: str, **kw) -> Write:
    rec = record(eid, **kw)
    first = ev.ExecutionStarted(seq=1, at=rec.created_at, workflow=rec.workflow, version="v1")
    return Write(eid, [first], create=rec, updated_at=rec.created_at)


@pytest.fixture
async def store(store_url):
    async with open_store(store_url) as s:
        yield s


async def test_a_write_appends_events_in_order_and_a_repeated_create_is_refused_whole(store):
    assert await store.commit([start("e1")]) == set()
    step = ev.StepScheduled(seq=2, at=NOW + 1, step="a")
    assert await store.commit([Write("e1", [step], updated_at=NOW + 1)]) == set()
    again = start("e1", workflow="other")
    again.timers_set.append(("wait:x", NOW + 10))
    assert await store.commit([again, start("e2")]) == {"e1"}
    history = await store.history("e1")
    assert [type(e).__name__ for e in history] == ["ExecutionStarted", "StepScheduled"]
    assert (await store.get("e1")).workflow == "wf"
    assert [e.seq for e in await store.history("e2")] == [1]
    assert await store.history("nope") == [] and await store.get("nope") is None


async def test_an_execution_that_ends_in_its_first_write_keeps_its_output_and_error(store):
    done = start("ok")
    done.status, done.output = "completed", b'"fine"'
    failed = start("bad")
    failed.status, failed.error = "failed", {"kind": "exception", "message": "boom"}
    await store.commit([done, failed])
    ok, bad = await store.get("ok"), await store.get("bad")
    assert (ok.status, ok.output) == ("completed", b'"fine"')
    assert (bad.status, bad.error) == ("failed", {"kind": "exception", "message": "boom"})


async def test_status_changes_are_listed_newest_first_and_filtered(store):
    await store.commit(
        [start(f"e{i}", at=NOW + i, workflow="a" if i % 2 else "b") for i in range(5)]
    )
    end = Write("e3", [], status="completed", output=b"3", updated_at=NOW + 9)
    fail = Write("e4", [], status="failed", error={"message": "no"}, updated_at=NOW + 9)
    await store.commit([end, fail])
    assert [r.id for r in await store.list()] == ["e4", "e3", "e2", "e1", "e0"]
    assert [r.id for r in await store.list(limit=2)] == ["e4", "e3"]
    assert [r.id for r in await store.list(status="running")] == ["e2", "e1", "e0"]
    assert [r.id for r in await store.list(workflow="a")] == ["e3", "e1"]
    assert [r.id for r in await store.list(status="completed", workflow="a")] == ["e3"]
    e3, e4 = await store.get("e3"), await store.get("e4")
    assert (e3.output, e3.updated_at) == (b"3", NOW + 9)
    assert e4.error == {"message": "no"}


async def test_pages_of_executions_follow_a_keyset_with_filters_and_an_id_prefix(store):
    # three created at the same time: the id breaks the tie, and no page repeats or skips one
    at = [NOW, NOW + 1, NOW + 1, NOW + 1, NOW + 2, NOW + 3]
    ids = ["order-1", "order-2", "order-3", "refund-1", "order-10", "\u00e9t\u00e9-1"]
    await store.commit(
        [start(eid, at=t, workflow="refund" if "refund" in eid else "order")
         for eid, t in zip(ids, at, strict=True)]
    )  # fmt: skip
    await store.commit([Write("order-2", [], status="completed", updated_at=NOW + 9)])
    pages, before = [], None
    while page := await store.list(limit=2, before=before):
        pages.append([r.id for r in page])
        before = (page[-1].created_at, page[-1].id)
    assert pages == [
        ["\u00e9t\u00e9-1", "order-10"],
        ["refund-1", "order-3"],
        ["order-2", "order-1"],
    ]
    assert [r.id for r in await store.list(id_prefix="order-1")] == ["order-10", "order-1"]
    assert [r.id for r in await store.list(id_prefix="\u00e9t")] == ["\u00e9t\u00e9-1"]
    assert [r.id for r in await store.list(id_prefix="order", status="running", limit=2,
                                           before=(NOW + 1, "order-3"))] == ["order-1"]  # fmt: skip
    assert [r.id for r in await store.list(workflow="refund", before=(NOW + 1, "refund-1"))] == []
    assert [r.id for r in await store.list(status="completed", id_prefix="order-")] == ["order-2"]
    assert await store.list(id_prefix="nothing") == []


async def test_unfinished_tasks_of_every_execution_are_listed_oldest_first(store):
    await store.commit([start("e1"), start("e2")])
    await store.commit([scheduled("e1", 2, task("t1", at=NOW + 2))])
    await store.commit([scheduled("e2", 2, task("t2", eid="e2", at=NOW + 1))])
    assert [t.id for t in await store.unfinished_tasks(10)] == ["t2", "t1"]
    await store.commit([Write("e2", [], tasks_done=["t2"], updated_at=NOW + 3)])
    assert [t.id for t in await store.unfinished_tasks(10)] == ["t1"]
    assert await store.unfinished_tasks(0) == []


async def test_a_failing_write_leaves_nothing_of_the_batch(store):
    await store.commit([start("e1")])
    clash = Write("e1", [ev.StepScheduled(seq=1, at=NOW, step="a")], updated_at=NOW)
    with pytest.raises((StoreError, sqlite3.IntegrityError)):
        await store.commit([start("e2"), clash])
    assert await store.get("e2") is None and await store.history("e2") == []
    assert len(await store.history("e1")) == 1


async def test_inbox_items_reach_the_owner_or_a_claimer_and_are_consumed_by_a_commit(store):
    await store.lock()  # SQLite: the one engine on the file may take anything
    await store.commit([
        start("mine", owner="engine-a"), start("theirs", owner="engine-b"),
        start("nobodys", owner=None, status="waiting"),
    ])  # fmt: skip
    now = time.time()
    await store.heartbeat("engine-a", now, "")
    await store.heartbeat("engine-b", now, "")
    await store.send("mine", "approve", "manager", b'{"ok":true}', NOW)
    await store.send("theirs", "cancel", "", b"null", NOW)
    await store.send("mine", "signal", "go", b"1", NOW + 1)
    await store.send("nobodys", "signal", "wake", b"2", NOW + 2)

    def receive(engine: str):
        return store.receive(engine, now, 15.0, 10, {"wf": "v1"})

    items = await receive("engine-a")
    got = [(i.execution_id, i.kind, i.name, i.payload) for i in items]
    expected = [("mine", "approve", "manager", b'{"ok":true}'), ("mine", "signal", "go", b"1")]
    if store.exclusive:  # SQLite: the one engine on the file may take anything
        expected.insert(1, ("theirs", "cancel", "", b"null"))
    assert got == [*expected, ("nobodys", "signal", "wake", b"2")]
    await store.commit([Write("mine", [], inbox_done=[items[0].id], updated_at=NOW)])
    assert "manager" not in [i.name for i in await receive("engine-a")]
    theirs = [i.name for i in await receive("engine-b")]
    assert theirs == (["", "go", "wake"] if store.exclusive else ["", "wake"])
    assert await store.receive("engine-a", now, 15.0, 10, {"other": "v1"}) == []


async def test_requests_for_ended_executions_are_dropped_and_never_shadow_new_ones(store):
    await store.commit([start("over", status="completed"), start("live")])
    now = time.time()
    await store.heartbeat("engine-a", now, "")
    for i in range(150):
        await store.send("over", "approve", "manager", b"null", NOW + i)
    await store.send("live", "approve", "manager", b"null", NOW + 200)
    got = await store.receive("engine-a", now, 15.0, 100, {"wf": "v1"})
    assert [i.execution_id for i in got] == ["live"]
    dropped = await store.drop_stale(100)
    assert len(dropped) == 100 and {i.execution_id for i in dropped} == {"over"}
    assert len(await store.drop_stale(100)) == 50 and await store.drop_stale(100) == []


async def test_one_execution_is_claimed_when_it_wakes_unless_a_live_engine_owns_it(store):
    await store.lock()  # SQLite: the one engine on the file may take anything
    await store.commit([
        start("asleep", owner="engine-dead", status="waiting"),
        start("held", owner="engine-alive", status="waiting"),
        start("done", owner=None, status="completed"),
        start("old", owner=None, status="waiting", version="v0"),
    ])  # fmt: skip
    now = time.time()
    await store.heartbeat("engine-dead", now - 60, "")
    await store.heartbeat("engine-alive", now, "")
    runnable = {"wf": "v1"}
    got = await store.claim_one("engine-new", "asleep", now, 15.0, runnable)
    assert got is not None and got.owner == "engine-new"
    held = await store.claim_one("engine-new", "held", now, 15.0, runnable)
    assert (held is not None) == store.exclusive
    assert await store.claim_one("engine-new", "done", now, 15.0, runnable) is None
    assert await store.claim_one("engine-new", "old", now, 15.0, runnable) is None
    assert await store.claim_one("engine-new", "missing", now, 15.0, runnable) is None
    # a waiting execution is not claimed in bulk: it is claimed when it wakes
    await store.commit([start("idle", owner=None, status="waiting")])
    assert [r.id for r in await store.claim("engine-new", now, 15.0, 10, runnable)] == []


async def test_due_timers_are_found_earliest_first_for_what_an_engine_may_run(store):
    await store.lock()  # SQLite: the one engine on the file may take anything
    a, b, c = start("a", owner=None), start("b", owner="engine-alive"), start("c", owner=None)
    a.timers_set = [("sleep:0", NOW + 5), ("approval:1", NOW + 50)]
    b.timers_set = [("sleep:0", NOW + 1)]
    c.timers_set = [("sleep:0", NOW + 3)]
    await store.commit([a, b, c])
    now = time.time()
    await store.heartbeat("engine-alive", now, "")
    due = await store.due_timers("engine-x", now, 15.0, NOW + 10, 10, {"wf": "v1"})
    expected = [("c", "sleep:0", NOW + 3), ("a", "sleep:0", NOW + 5)]
    if store.exclusive:
        expected.insert(0, ("b", "sleep:0", NOW + 1))
    assert due == expected
    assert await store.due_timers("engine-x", now, 15.0, NOW + 10, 1, {"wf": "v1"}) == expected[:1]


async def test_events_are_read_back_by_key_to_learn_a_lost_commit_s_fate(store):
    await store.commit([start("e1")])
    step = ev.StepScheduled(seq=2, at=NOW + 1, step="a")
    await store.commit([Write("e1", [step], updated_at=NOW + 1)])
    found = await store.events_at([("e1", 2), ("e1", 3), ("nope", 1)])
    assert found == {("e1", 2): ev.encode_event(step)}
    assert {r.id for r in await store.get_many(["e1", "nope"])} == {"e1"}


async def test_claims_take_unfinished_runnable_executions_of_dead_or_no_engines(store):
    await store.commit([
        start("orphan", owner=None, at=NOW),
        start("dead", owner="engine-dead", at=NOW + 1),
        start("alive", owner="engine-alive", at=NOW + 2),
        start("old-version", owner=None, version="v0", at=NOW + 3),
        start("other-wf", owner=None, workflow="zzz", at=NOW + 4),
        start("finished", owner=None, status="completed", at=NOW + 5),
    ])  # fmt: skip
    await store.lock()  # SQLite: the one engine on the file owns everything unfinished
    now = time.time()
    await store.heartbeat("engine-dead", now - 60, "pid=1")
    await store.heartbeat("engine-alive", now, "pid=2")
    got = await store.claim("engine-new", now, 15.0, 100, {"wf": "v1"})
    expected = ["orphan", "dead"] + (["alive"] if store.exclusive else [])
    assert [r.id for r in got] == expected
    assert all(r.owner == "engine-new" for r in got)
    assert (await store.get("orphan")).owner == "engine-new"
    await store.release("engine-new")
    assert (await store.get("orphan")).owner is None


async def test_two_engines_claiming_at_once_never_share_an_execution(postgres_url):
    async with PostgresStore(postgres_url) as a, PostgresStore(postgres_url) as b:
        await a.commit([start(f"e{i}", owner=None, at=NOW + i) for i in range(200)])
        now = time.time()
        await a.heartbeat("a", now, "")
        await b.heartbeat("b", now, "")
        got_a, got_b = await asyncio.gather(
            a.claim("a", now, 15.0, 120, {"wf": "v1"}), b.claim("b", now, 15.0, 120, {"wf": "v1"})
        )
        ids_a, ids_b = {r.id for r in got_a}, {r.id for r in got_b}
        assert not ids_a & ids_b
        assert len(ids_a | ids_b) == 200


# --- tasks ---------------------------------------------------------------------------


def task(tid: str, eid: str = "e1", kind: str = "step", name: str = "a", queue: str = "default",
         priority: int = 0, at: float = NOW, available_at: float | None = None,
         attempt: int = 1) -> TaskRow:  # fmt: skip
    return TaskRow(
        id=tid, execution_id=eid, kind=kind, name=name, queue=queue, attempt=attempt,
        idempotency_key=f"{eid}/{name}/{attempt}", inputs=b'[1]', created_at=at,
        available_at=at if available_at is None else available_at, priority=priority,
        timeout=30.0,
    )  # fmt: skip


def scheduled(eid: str, seq: int, *tasks: TaskRow) -> Write:
    step = ev.StepScheduled(seq=seq, at=NOW + seq, step=tasks[0].name if tasks else "a")
    return Write(eid, [step], updated_at=NOW + seq, tasks_enqueued=list(tasks))


HOSTS = {"step": ["a", "b"], "activity": ["charge"]}


async def claim(store, worker="w1", queues=("default",), hosts=None, now=NOW + 10, lease=30.0,
                limit=10) -> list[TaskRow]:  # fmt: skip
    hosts = HOSTS if hosts is None else hosts
    return await store.claim_tasks(worker, list(queues), hosts, now, lease, limit)


async def test_a_task_is_enqueued_in_the_commit_of_its_event_and_a_failed_commit_enqueues_none(
    store,
):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2, task("t1"))])
    assert [type(e).__name__ for e in await store.history("e1")][-1] == "StepScheduled"
    [t1] = await store.tasks_in_flight(["e1", "nope"])
    assert t1 == task("t1")  # as given: ready, held by no one
    assert await store.get_task("t1") == t1
    assert await store.get_task("nope") is None
    clash = Write("e1", [ev.StepScheduled(seq=2, at=NOW, step="b")], updated_at=NOW,
                  tasks_enqueued=[task("t2", name="b")])  # fmt: skip
    with pytest.raises(StoreError):
        await store.commit([scheduled("e1", 3, task("t3")), clash])
    assert [t.id for t in await store.tasks_in_flight(["e1"])] == ["t1"]
    assert [t.id for t in await claim(store)] == ["t1"]


async def test_a_refused_create_enqueues_none_of_its_tasks(store):
    await store.commit([start("e1")])
    again, fresh = start("e1"), start("e2")
    again.tasks_enqueued = [task("t1", eid="e1")]
    fresh.tasks_enqueued = [task("t2", eid="e2")]
    assert await store.commit([again, fresh]) == {"e1"}
    assert [t.id for t in await store.tasks_in_flight(["e1", "e2"])] == ["t2"]
    again.tasks_enqueued, again.tasks_done = [], ["t2"]  # nor completes any
    await store.commit([again])
    assert [t.id for t in await claim(store)] == ["t2"]


async def test_tasks_are_claimed_by_queue_and_by_the_names_a_worker_hosts(store):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2,
        task("a"), task("b", name="b"), task("c", name="c"), task("charge", kind="activity",
        name="charge"), task("a-as-activity", kind="activity", name="a"),
        task("gpu", queue="gpu"))])  # fmt: skip
    got = await claim(store, worker="w1", lease=30.0)
    assert {t.id for t in got} == {"a", "b", "charge"}
    assert all((t.status, t.worker_id, t.lease_until, t.claims) == ("leased", "w1", NOW + 40, 1)
               for t in got)  # fmt: skip
    assert await claim(store, worker="w2") == []  # leased, not offered again
    assert [t.id for t in await claim(store, worker="w2", queues=["gpu", "x"])] == ["gpu"]
    assert await claim(store, worker="w3", hosts={"step": ["c"]}, queues=[]) == []
    assert await claim(store, worker="w3", hosts={}) == []
    assert [t.id for t in await claim(store, worker="w3", hosts={"step": ["c"]})] == ["c"]
    assert [t.id for t in await claim(store, hosts={"activity": ["a"]})] == ["a-as-activity"]


async def test_two_workers_claiming_at_once_never_share_a_task(postgres_url):
    async with PostgresStore(postgres_url) as a, PostgresStore(postgres_url) as b:
        await a.commit([start("e1")])
        tasks = [task(f"t{i}", at=NOW + i) for i in range(200)]
        await a.commit([scheduled("e1", 2, *tasks)])
        got_a, got_b = await asyncio.gather(claim(a, worker="a", now=NOW + 300, limit=120),
                                            claim(b, worker="b", now=NOW + 300, limit=120))  # fmt: skip
        ids_a, ids_b = {t.id for t in got_a}, {t.id for t in got_b}
        assert not ids_a & ids_b
        assert len(ids_a | ids_b) == 200


async def test_a_task_whose_lease_runs_out_is_offered_again_with_the_same_idempotency_key(store):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2, task("t1"))])
    [first] = await claim(store, worker="w1", now=NOW + 10, lease=30.0)
    assert await claim(store, worker="w2", now=NOW + 39.9) == []
    [again] = await claim(store, worker="w2", now=NOW + 40, lease=30.0)
    assert (again.id, again.attempt, again.idempotency_key) == (
        first.id, first.attempt, first.idempotency_key)  # fmt: skip
    assert (again.worker_id, again.lease_until, again.claims) == ("w2", NOW + 70, 2)


async def test_a_heartbeat_extends_the_lease_and_is_refused_after_a_takeover_or_completion(
    store,
):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2, task("t1"), task("t2"))])
    await claim(store, worker="w1", now=NOW + 10, lease=30.0)
    assert await store.heartbeat_task("t1", "w1", NOW + 35, 30.0)
    assert not await store.heartbeat_task("t1", "w2", NOW + 35, 30.0)  # not w2's
    assert not await store.heartbeat_task("nope", "w1", NOW + 35, 30.0)
    [taken] = await claim(store, worker="w2", now=NOW + 50)  # t1's lease runs to NOW + 65
    assert taken.id == "t2"
    assert not await store.heartbeat_task("t2", "w1", NOW + 51, 30.0)  # taken over
    assert await store.heartbeat_task("t2", "w2", NOW + 51, 30.0)
    await store.commit([Write("e1", [], updated_at=NOW + 52, tasks_done=["t1"])])
    assert not await store.heartbeat_task("t1", "w1", NOW + 52, 30.0)  # done


async def test_a_task_is_done_in_the_commit_that_records_its_result(store):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2, task("t1"), task("t2", name="b"))])
    [t1, t2] = await claim(store, worker="w1", now=NOW + 10)
    result = ev.StepCompleted(seq=3, at=NOW + 11, step="a")
    await store.commit([Write("e1", [result], updated_at=NOW + 11, tasks_done=[t1.id])])
    assert type((await store.history("e1"))[-1]).__name__ == "StepCompleted"
    assert [t.id for t in await store.tasks_in_flight(["e1"])] == ["t2"]
    done = await store.get_task("t1")
    assert done is not None and done.status == "done"
    assert [t.id for t in await claim(store, worker="w2", now=NOW + 1000)] == ["t2"]
    # a task enqueued and completed in one commit (the embedded engine's worker, quick)
    held = TaskRow(**{**vars(task("t3")), "status": "leased", "worker_id": "engine",
                      "lease_until": NOW + 50, "claims": 1})  # fmt: skip
    await store.commit([Write("e1", [], updated_at=NOW + 12, tasks_done=["t3"]),
                        scheduled("e1", 4, held)])  # fmt: skip
    assert [t.id for t in await store.tasks_in_flight(["e1"])] == ["t2"]
    assert await claim(store, worker="w3", now=NOW + 10_000) == [
        dataclass_replace(t2, worker_id="w3", lease_until=NOW + 10_030, claims=3)
    ]


async def test_tasks_are_claimed_by_priority_then_age_and_not_before_they_are_available(store):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2,
        task("old", at=NOW), task("new", at=NOW + 1), task("urgent", at=NOW + 2, priority=5),
        task("later", at=NOW, available_at=NOW + 100, priority=9),
        task("low", at=NOW - 5, priority=-1))])  # fmt: skip
    taken = [t.id for t in await claim(store, now=NOW + 10, lease=1000.0, limit=2)]
    assert taken == ["urgent", "old"]
    assert [t.id for t in await claim(store, now=NOW + 10, lease=1000.0)] == ["new", "low"]
    assert await claim(store, now=NOW + 99) == []
    assert [t.id for t in await claim(store, now=NOW + 100)] == ["later"]


async def test_a_worker_that_stops_gives_back_the_tasks_it_holds(store):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2, task("t1"), task("t2"), task("t3"))])
    await claim(store, worker="w1", limit=2)
    await claim(store, worker="w2")
    await store.release_tasks("w1")
    again = await claim(store, worker="w3", now=NOW + 11)  # at once, not after the lease
    assert [(t.id, t.idempotency_key, t.claims) for t in again] == [
        ("t1", "e1/a/1", 2), ("t2", "e1/a/1", 2)]  # fmt: skip
    assert not await store.heartbeat_task("t1", "w1", NOW + 12, 30.0)
    assert await store.heartbeat_task("t3", "w2", NOW + 12, 30.0)  # w2's stay w2's


async def test_a_worker_gives_back_only_the_tasks_it_names(store):
    await store.commit([start("e1")])
    await store.commit([scheduled("e1", 2, task("t1"), task("t2"))])
    await claim(store, worker="w1", limit=2)
    await store.release_tasks("w1", ["t2", "t-none"])
    again = await claim(store, worker="w2", now=NOW + 1)  # t2 at once; t1 stays w1's
    assert [t.id for t in again] == ["t2"]
    assert await store.heartbeat_task("t1", "w1", NOW + 2, 30.0)
    await store.release_tasks("w2", ["t1"])  # not w2's to give back
    assert await store.heartbeat_task("t1", "w1", NOW + 3, 30.0)


async def test_unfinished_tasks_are_counted_by_queue(store):
    await store.commit([start("e1"), start("e2")])
    await store.commit([scheduled("e1", 2,
        task("t1"), task("t2"), task("t3", available_at=NOW + 100), task("g1", queue="gpu")),
        scheduled("e2", 2, task("t4", eid="e2"))])  # fmt: skip
    assert await store.task_counts(NOW) == {
        "default": TaskCounts(ready=3, delayed=1, leased=0),
        "gpu": TaskCounts(1, 0, 0),
    }
    await claim(store, worker="w1", now=NOW + 10, lease=30.0, limit=2)
    await store.commit([Write("e2", [], updated_at=NOW + 11, tasks_done=["t4"])])
    assert await store.task_counts(NOW + 11) == {
        "default": TaskCounts(ready=0, delayed=1, leased=2),
        "gpu": TaskCounts(1, 0, 0),
    }
    # a lease that ran out counts as ready again
    assert (await store.task_counts(NOW + 41))["default"] == TaskCounts(2, 1, 0)
    assert [t.id for t in await store.tasks_in_flight(["e1", "e2"])] == ["g1", "t1", "t2", "t3"]


async def test_an_unreachable_postgres_names_the_url_and_hides_the_password():
    store = PostgresStore("postgresql://app:s3cret@127.0.0.1:1/nowhere", connect_timeout=5)
    with pytest.raises(StoreUnavailableError) as caught:
        await store.connect()
    message = str(caught.value)
    assert "postgresql://app:***@127.0.0.1:1/nowhere" in message and "s3cret" not in message
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@127.0.0.1:1/nowhere?password=s3cret",
        "postgresql://app@127.0.0.1:1/nowhere?sslmode=disable&password=s3cret&x=1",
        "postgresql://app:s3/cret@127.0.0.1:1/nowhere",
        "postgresql://app:s3#cret@127.0.0.1:1/nowhere",
        "postgresql://app:s3?cret@127.0.0.1:1/nowhere",
        "postgresql://app:s3@cret@127.0.0.1:1/nowhere",
        "postgres://app:s3%2Fcret@127.0.0.1:1/nowhere",
    ],
)
async def test_no_error_shows_the_password_however_the_url_holds_it(url):
    secrets = ("s3cret", "s3/cret", "s3#cret", "s3?cret", "s3@cret", "s3%2Fcret", "cret")
    store = PostgresStore(url, connect_timeout=5)
    assert not any(s in store.url for s in secrets) and "127.0.0.1" in store.url
    with pytest.raises(StoreError) as caught:
        await store.connect()
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "***" in message, message
    assert not any(s in message for s in secrets), message
    with pytest.raises(StoreError) as caught:
        async with Engine(url):
            pass
    assert not any(s in str(caught.value) for s in secrets), str(caught.value)


def test_mask_url_keeps_what_is_not_a_password():
    assert (
        mask_url("postgresql://u@h/d?application_name=x") == "postgresql://u@h/d?application_name=x"
    )
    assert mask_url("postgresql://u:p@[::1]:5/d") == "postgresql://u:***@[::1]:5/d"
    assert (
        mask_url("postgresql:///d?host=/tmp&PASSWORD=p") == "postgresql:///d?host=/tmp&PASSWORD=***"
    )


@pytest.mark.parametrize("content", [b"just some text, not a database\n" * 50, b"\x13\x37" * 8192])
async def test_a_corrupted_sqlite_file_is_a_store_error_naming_the_file(tmp_path, content):
    path = tmp_path / "damaged.db"
    path.write_bytes(content)
    for opening in (lambda: open_store(str(path)).connect(), lambda: Engine(str(path)).open()):
        with pytest.raises(StoreError, match="not a usable SQLite database") as caught:
            await opening()
        assert str(path) in str(caught.value)
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://root:s3cret@db/app", "mysql://root:***@db/app"),
        ("redis://localhost:6379", "'redis'"),
        ("sqlite:///x.db?foo=1", "no option 'foo'"),
        ("sqlite:///x.db?synchronous=full&journal=wal", "no option 'journal'"),
    ],
)
def test_a_url_no_store_takes_is_refused_with_what_is_accepted(url, named):
    for opening in (open_store, Engine):
        with pytest.raises(StoreError) as caught:
            opening(url)
        message = str(caught.value)
        assert named in message and "s3cret" not in message
        assert "sqlite://" in message or "synchronous=" in message  # what it takes instead


async def test_a_sqlite_store_in_a_missing_folder_is_refused_and_nothing_is_created(tmp_path):
    url = f"sqlite:///{tmp_path}/missing/db.sqlite"
    with pytest.raises(StoreUnavailableError, match="missing"):
        await open_store(url).connect()
    assert not (tmp_path / "missing").exists()


async def test_the_sqlite_schema_file_matches_what_the_migrations_build(tmp_path):
    def tables(db: sqlite3.Connection) -> set[tuple[str, str]]:
        rows = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            " AND name != 'cerebelum_migrations'"
        )
        return {(name, " ".join((sql or "").split())) for name, sql in rows}

    async with open_store(f"sqlite:///{tmp_path}/migrated.db"):
        pass
    migrated = sqlite3.connect(tmp_path / "migrated.db")
    fresh = sqlite3.connect(":memory:")
    fresh.executescript(_sql.schema("sqlite"))
    assert tables(migrated) == tables(fresh)


async def test_the_postgres_schema_file_matches_what_the_migrations_build(postgres_url):
    query = """
        SELECT table_name, column_name, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = current_schema()
          AND table_name != 'cerebelum_migrations'
        UNION ALL
        SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename != 'cerebelum_migrations'
    """
    conn = await asyncpg.connect(postgres_url)
    try:
        migrated = {tuple(r) for r in await conn.fetch(query)}
        await conn.execute("CREATE SCHEMA fresh; SET search_path = fresh")
        await conn.execute(_sql.schema("postgres"))
        fresh = {tuple(r) for r in await conn.fetch(query)}
    finally:
        await conn.close()

    def strip(rows):
        return {tuple(str(v).replace("fresh.", "").replace("public.", "") for v in r) for r in rows}

    assert strip(migrated) == strip(fresh)
