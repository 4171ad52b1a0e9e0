-- commit_created --
-- The parts of a group commit: the store joins those it needs into one statement (one
-- round trip, atomic by itself), numbering their parameters in turn. A create whose id
-- exists already is left out whole (its events, status and timers too): "refused".
created AS (
    INSERT INTO executions
        (id, workflow, version, kind, status, inputs, output, error, parent_id, owner,
         created_at, updated_at, queue, priority, dedup_id)
    SELECT c.id, c.workflow, c.version, c.kind, c.status, c.inputs, c.output, c.error,
           c.parent_id, c.owner, c.at, c.at, c.queue, c.priority, c.dedup_id
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                $7::bytea[], $8::bytea[], $9::text[], $10::text[], $11::float8[],
                $12::text[], $13::int[], $14::text[])
         AS c(id, workflow, version, kind, status, inputs, output, error, parent_id, owner, at,
              queue, priority, dedup_id)
    ON CONFLICT DO NOTHING  -- the id, or a live dedup id of the queue
    RETURNING id
),
refused AS (
    SELECT id FROM unnest($1::text[]) AS r(id) WHERE id NOT IN (SELECT id FROM created)
)

-- commit_events --
new_events AS (
    INSERT INTO events (execution_id, seq, type, at, data)
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::float8[], $5::bytea[])
         AS x(execution_id, seq, type, at, data)
    WHERE true {refused}
)

-- commit_status --
changed AS (
    UPDATE executions x
    SET status = s.status, output = s.output, error = s.error, updated_at = s.at
    FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::float8[])
         AS s(id, status, output, error, at)
    WHERE x.id = s.id
)

-- commit_timers_cleared --
-- '*' clears all the execution's timers (but those this commit sets).
cleared AS (
    DELETE FROM timers t
    USING unnest($1::text[], $2::text[]) AS d(execution_id, timer)
    WHERE t.execution_id = d.execution_id
      AND (d.timer = '*' OR t.timer = d.timer)
      AND (t.execution_id, t.timer) NOT IN (SELECT * FROM unnest($3::text[], $4::text[]))
)

-- commit_timers_set --
set_timers AS (
    INSERT INTO timers (execution_id, timer, fire_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::float8[]) AS x(execution_id, timer, fire_at)
    WHERE true {refused}
    ON CONFLICT (execution_id, timer) DO UPDATE SET fire_at = excluded.fire_at
)

-- commit_inbox --
consumed AS (
    DELETE FROM inbox WHERE id = ANY($1::bigint[])
)

-- commit_tasks_enqueued --
-- Rows as given (a task done in this same commit comes already marked done: the parts
-- of one statement do not see each other's rows).
enqueued AS (
    INSERT INTO tasks
        (id, execution_id, kind, name, queue, attempt, idempotency_key, inputs, timeout,
         heartbeat_timeout, status, worker_id, lease_until, claims, created_at, available_at,
         priority)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                         $7::text[], $8::bytea[], $9::float8[], $10::float8[], $11::text[],
                         $12::text[], $13::float8[], $14::int[], $15::float8[], $16::float8[],
                         $17::int[])
         AS x(id, execution_id, kind, name, queue, attempt, idempotency_key, inputs, timeout,
              heartbeat_timeout, status, worker_id, lease_until, claims, created_at,
              available_at, priority)
    WHERE true {refused}
)

-- commit_tasks_done --
tasks_done AS (
    UPDATE tasks t SET status = 'done', lease_until = NULL
    FROM unnest($1::text[], $2::text[]) AS x(execution_id, id)
    WHERE t.id = x.id {refused}
)

-- history --
SELECT data FROM events WHERE execution_id = $1 ORDER BY seq

-- get_execution --
SELECT * FROM executions WHERE id = $1

-- claim --
-- Executions with work in flight (running) or waiting for fixed code (stuck); those
-- that only wait (timers, approvals, signals) are claimed one by one when they wake.
UPDATE executions SET owner = $1, waiting_for = NULL
WHERE id IN (
    SELECT id FROM executions
    WHERE (status IN ('running', 'stuck')
           -- marked as waiting for a version: this engine runs it, so it waits no more
           OR (waiting_for IS NOT NULL AND status = 'waiting'))
      AND workflow || '@' || version = ANY($5::text[])
      AND (owner IS NULL OR owner = $1 OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $2::float8 - $3::float8))
    ORDER BY created_at
    LIMIT $4::int
    FOR UPDATE SKIP LOCKED
)
RETURNING *

-- claim_one --
UPDATE executions SET owner = $1, waiting_for = NULL
WHERE id = $4
  AND status IN ('queued', 'running', 'waiting', 'stuck')
  AND workflow || '@' || version = ANY($5::text[])
  AND (owner IS NULL OR owner = $1 OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $2::float8 - $3::float8))
RETURNING *

-- due_timers --
-- The few due timers by their index, then each one's execution (LATERAL, fenced with
-- OFFSET 0: a nested loop whatever the statistics say, as right after a bulk load,
-- never a scan of the executions that only wait).
SELECT t.execution_id, t.timer, t.fire_at FROM timers t
CROSS JOIN LATERAL (
    SELECT 1 FROM executions e
    WHERE e.id = t.execution_id
      AND e.status IN ('running', 'waiting', 'stuck')
      AND e.workflow || '@' || e.version = ANY($6::text[])
      AND (e.owner IS NULL OR e.owner = $1
           OR e.owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $2::float8 - $3::float8))
    OFFSET 0  -- kept a subquery: the planner may not turn it into a join from executions
) mine
WHERE t.fire_at <= $4
ORDER BY t.fire_at
LIMIT $5::int

-- events_at --
SELECT e.execution_id, e.seq, e.data FROM events e
JOIN unnest($1::text[], $2::int[]) AS k(execution_id, seq)
  ON e.execution_id = k.execution_id AND e.seq = k.seq

-- get_many --
SELECT * FROM executions WHERE id = ANY($1::text[])

-- heartbeat --
INSERT INTO engines (id, info, heartbeat_at) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- engines --
SELECT id, info, heartbeat_at FROM engines

-- release_executions --
UPDATE executions SET owner = NULL WHERE owner = $1

-- delete_engine --
DELETE FROM engines WHERE id = $1

-- send --
-- The owner (any engine listening) hears of it at once: NOTIFY is sent on commit.
WITH sent AS (
    INSERT INTO inbox (execution_id, kind, name, payload, created_at)
    VALUES ($1, $2, $3, $4, $5) RETURNING 1
)
SELECT pg_notify('cerebelum', 'inbox ' || $6) FROM sent

-- receive --
-- Requests for executions this engine owns, or may claim (no live owner): the inbox
-- first (it is small), each request's execution looked up (LATERAL).
SELECT i.* FROM inbox i
CROSS JOIN LATERAL (
    SELECT 1 FROM executions e
    WHERE e.id = i.execution_id
      AND e.status IN ('queued', 'running', 'waiting', 'stuck')
      AND (e.workflow || '@' || e.version = ANY($5::text[]) OR i.kind = 'migrate')
      AND (e.owner IS NULL OR e.owner = $1
           OR e.owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $2::float8 - $3::float8))
    OFFSET 0  -- kept a subquery: the planner may not turn it into a join from executions
) mine
ORDER BY i.id LIMIT $4::int

-- drop_stale --
-- Requests that reached the inbox after their execution ended: nothing will take them.
DELETE FROM inbox WHERE id IN (
    SELECT i.id FROM inbox i LEFT JOIN executions e ON e.id = i.execution_id
    WHERE e.id IS NULL OR e.status IN ('completed', 'failed', 'cancelled')
    ORDER BY i.id LIMIT $1::int
    FOR UPDATE OF i SKIP LOCKED
)
RETURNING *

-- save_blueprint --
INSERT INTO blueprints (version, workflow, label, blueprint, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (version) DO NOTHING

-- get_blueprint --
SELECT * FROM blueprints WHERE version = $1

-- stranded --
-- Unfinished graph executions of workflows this engine runs ($1 names, $2 their
-- name@version), at versions it does not run, that no live engine holds.
SELECT * FROM executions
WHERE status IN ('running', 'waiting', 'stuck') AND kind = 'graph'
  AND workflow = ANY($1::text[])
  AND NOT (workflow || '@' || version = ANY($2::text[]))
  AND ($3::bool OR waiting_for IS NULL)
  AND (owner IS NULL OR owner = $4
       OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $5::float8 - $6::float8))
ORDER BY created_at
LIMIT $7::int

-- set_waiting --
UPDATE executions SET waiting_for = $1, owner = COALESCE($2, owner) WHERE id = $3

-- move --
UPDATE executions SET version = $3, waiting_for = NULL, owner = COALESCE($4, owner),
    updated_at = $5
WHERE id = $1 AND version = $2 AND status IN ('running', 'waiting', 'stuck')
  AND (owner IS NULL OR owner = $4
       OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $5::float8 - $6::float8))

-- engine_alive --
SELECT 1 FROM engines WHERE id = $1 AND heartbeat_at > $2

-- insert_event --
INSERT INTO events (execution_id, seq, type, at, data) VALUES ($1, $2, $3, $4, $5)

-- claim_tasks --
-- The ready tasks of the worker's queues and names that are available, and the leases
-- that ran out (each half through its own index); SKIP LOCKED: two claimers never wait
-- for, nor share, a task.
UPDATE tasks t SET status = 'leased', worker_id = $1, lease_until = $3::float8 + $4::float8,
    claims = t.claims + 1
FROM (
    SELECT id FROM tasks
    WHERE ((status = 'ready' AND name = ANY($6::text[]) AND available_at <= $3::float8)
           OR (status = 'leased' AND lease_until <= $3::float8))
      AND queue = ANY($2::text[])
      AND kind || ':' || name = ANY($5::text[])
    ORDER BY priority DESC, available_at, id
    LIMIT $7::int
    FOR UPDATE SKIP LOCKED
) c
WHERE t.id = c.id
RETURNING t.*

-- heartbeat_task --
UPDATE tasks SET lease_until = $3::float8 + $4::float8
WHERE id = $1 AND worker_id = $2 AND status = 'leased'

-- release_tasks --
UPDATE tasks SET status = 'ready', worker_id = NULL, lease_until = NULL
WHERE worker_id = $1 AND status = 'leased'

-- release_these --
UPDATE tasks SET status = 'ready', worker_id = NULL, lease_until = NULL
WHERE worker_id = $1 AND status = 'leased' AND id = ANY($2::text[])

-- get_task --
SELECT * FROM tasks WHERE id = $1

-- tasks_in_flight --
SELECT * FROM tasks
WHERE execution_id = ANY($1::text[]) AND status <> 'done'
ORDER BY created_at, id

-- unfinished_tasks --
SELECT * FROM tasks WHERE status <> 'done'
ORDER BY created_at, id
LIMIT $1

-- task_counts --
SELECT queue,
       count(*) FILTER (WHERE (status = 'ready' AND available_at <= $1)
                           OR (status = 'leased' AND lease_until <= $1)) AS ready,
       count(*) FILTER (WHERE status = 'ready' AND available_at > $1) AS delayed,
       count(*) FILTER (WHERE status = 'leased' AND lease_until > $1) AS leased
FROM tasks WHERE status IN ('ready', 'leased')
GROUP BY queue ORDER BY queue

-- admit --
-- Queued executions of queue $2 that may run now, taken for engine $1: no more than $4
-- of the queue's admitted executions unfinished at once (concurrency), no more than $5
-- admitted within the last $6 seconds (rate), highest priority first, then oldest. The
-- advisory lock makes two engines admitting for one queue take turns.
WITH locked AS (SELECT pg_advisory_xact_lock(hashtext('cerebelum-queue:' || $2))),
room AS (
    SELECT LEAST(
        $7::int,
        $4::int - (SELECT count(*) FROM executions, locked
                   WHERE queue = $2 AND status IN ('running', 'waiting', 'stuck')),
        $5::int - (SELECT count(*) FROM executions, locked
                   WHERE queue = $2 AND admitted_at > $3::float8 - $6::float8)
    ) AS n
),
picked AS (
    SELECT id FROM executions
    WHERE queue = $2 AND status = 'queued'
    ORDER BY priority DESC, created_at, id
    LIMIT (SELECT greatest(n, 0) FROM room)
    FOR UPDATE SKIP LOCKED
)
UPDATE executions e SET status = 'running', admitted_at = $3, owner = $1
FROM picked WHERE e.id = picked.id
RETURNING e.id

-- live_dedup --
SELECT id FROM executions
WHERE queue = $1 AND dedup_id = $2 AND status IN ('queued', 'running', 'waiting', 'stuck')
