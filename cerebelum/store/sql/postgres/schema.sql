CREATE TABLE executions (
    id          TEXT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    version     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    inputs      BYTEA NOT NULL,
    output      BYTEA,
    error       BYTEA,
    parent_id   TEXT,
    owner       TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    waiting_for TEXT,
    queue       TEXT,
    priority    INTEGER NOT NULL DEFAULT 0,
    dedup_id    TEXT,
    admitted_at DOUBLE PRECISION
);
-- the listing's keyset (0006_listing): newest first, by status, by workflow
CREATE INDEX executions_status ON executions (status, created_at, id);
CREATE INDEX executions_workflow ON executions (workflow, created_at, id);
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_id_prefix ON executions (id COLLATE "C");
CREATE INDEX executions_unfinished ON executions (owner) WHERE status IN ('running', 'waiting', 'stuck');

CREATE TABLE events (
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    type         TEXT NOT NULL,
    at           DOUBLE PRECISION NOT NULL,
    data         BYTEA NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE timers (
    execution_id TEXT NOT NULL,
    timer        TEXT NOT NULL,
    fire_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (execution_id, timer)
);
CREATE INDEX timers_due ON timers (fire_at);

CREATE TABLE engines (
    id           TEXT PRIMARY KEY,
    info         TEXT NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE inbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX inbox_execution ON inbox (execution_id, id);

CREATE TABLE blueprints (
    version    TEXT PRIMARY KEY,
    workflow   TEXT NOT NULL,
    label      TEXT NOT NULL,
    blueprint  BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

-- the executions marked as waiting for a version: few, looked at by every claim
CREATE INDEX executions_waiting_for ON executions (workflow) WHERE waiting_for IS NOT NULL;

-- tasks handed to workers (0004_tasks)
CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    execution_id      TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    queue             TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    idempotency_key   TEXT NOT NULL,
    inputs            BYTEA NOT NULL,
    timeout           DOUBLE PRECISION,
    heartbeat_timeout DOUBLE PRECISION,
    status            TEXT NOT NULL,
    worker_id         TEXT,
    lease_until       DOUBLE PRECISION,
    claims            INTEGER NOT NULL,
    created_at        DOUBLE PRECISION NOT NULL,
    available_at      DOUBLE PRECISION NOT NULL,
    priority          INTEGER NOT NULL
);
-- what a claim reads: the ready tasks of a queue and a name, in the order they are taken
CREATE INDEX tasks_ready ON tasks (queue, name, priority DESC, available_at) WHERE status = 'ready';
-- leases that run out, offered again
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE status = 'leased';
-- an execution's tasks still out (ready or leased)
CREATE INDEX tasks_unfinished ON tasks (execution_id) WHERE status <> 'done';

-- queues of executions (0005_queues)
CREATE INDEX executions_queued ON executions (queue, priority DESC, created_at)
    WHERE status = 'queued';
CREATE INDEX executions_admitted ON executions (queue, admitted_at) WHERE queue IS NOT NULL;
CREATE UNIQUE INDEX executions_dedup ON executions (queue, dedup_id)
    WHERE dedup_id IS NOT NULL AND status IN ('queued', 'running', 'waiting', 'stuck');
