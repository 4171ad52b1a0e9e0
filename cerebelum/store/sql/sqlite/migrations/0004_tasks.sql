-- Tasks: one attempt of a step, an activity or a code workflow's activation, handed to
-- a worker. Enqueued in the commit that records why, claimed by queue and by the names
-- a worker hosts, held under a lease that heartbeats extend, done in the commit that
-- records the result. A done row stays as the record: the indexes hold only the rest.
-- (No semicolon in these comments: the SQLite runner splits statements at them.)
CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    execution_id      TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    queue             TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    idempotency_key   TEXT NOT NULL,
    inputs            BLOB NOT NULL,
    timeout           REAL,
    heartbeat_timeout REAL,
    status            TEXT NOT NULL,
    worker_id         TEXT,
    lease_until       REAL,
    claims            INTEGER NOT NULL,
    created_at        REAL NOT NULL,
    available_at      REAL NOT NULL,
    priority          INTEGER NOT NULL
);
-- what a claim reads: the ready tasks of a queue and a name, in the order they are taken
CREATE INDEX tasks_ready ON tasks (queue, name, priority DESC, available_at) WHERE status = 'ready';
-- leases that run out, offered again
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE status = 'leased';
-- an execution's tasks still out (ready or leased)
CREATE INDEX tasks_unfinished ON tasks (execution_id) WHERE status <> 'done';
