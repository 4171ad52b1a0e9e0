-- insert_execution --
-- Ignored when the id exists, or the queue has a live execution of the dedup id.
INSERT OR IGNORE INTO executions
    (id, workflow, version, kind, status, inputs, output, error, parent_id, owner, created_at,
     updated_at, queue, priority, dedup_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- insert_event --
INSERT INTO events (execution_id, seq, type, at, data) VALUES (?, ?, ?, ?, ?)

-- update_status --
UPDATE executions SET status = ?, output = ?, error = ?, updated_at = ? WHERE id = ?

-- set_timer --
INSERT OR REPLACE INTO timers (execution_id, timer, fire_at) VALUES (?, ?, ?)

-- clear_timer --
DELETE FROM timers WHERE execution_id = ? AND timer = ?

-- clear_timers --
DELETE FROM timers WHERE execution_id = ?

-- delete_inbox --
DELETE FROM inbox WHERE id = ?

-- history --
SELECT data FROM events WHERE execution_id = ? ORDER BY seq

-- get_execution --
SELECT * FROM executions WHERE id = ?

-- claim --
-- Executions with work in flight (running) or waiting for fixed code (stuck); those
-- that only wait (timers, approvals, signals) are claimed one by one when they wake.
UPDATE executions SET owner = :engine, waiting_for = NULL
WHERE id IN (
    -- two halves, so that each is read through its own index: the executions with work
    -- in flight, and those marked as waiting for a version (this engine runs it, so it
    -- waits no more); never the (many) executions that only wait
    SELECT id FROM (
        SELECT * FROM executions WHERE status IN ('running', 'stuck')
        UNION ALL
        SELECT * FROM executions WHERE waiting_for IS NOT NULL AND status = 'waiting'
    )
    WHERE workflow || '@' || version IN (SELECT value FROM json_each(:runnable))
      AND (owner IS NULL OR :exclusive OR owner = :engine
           OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))
    ORDER BY created_at
    LIMIT :limit
)
RETURNING *

-- claim_one --
UPDATE executions SET owner = :engine, waiting_for = NULL
WHERE id = :id
  AND status IN ('queued', 'running', 'waiting', 'stuck')
  AND workflow || '@' || version IN (SELECT value FROM json_each(:runnable))
  AND (owner IS NULL OR :exclusive OR owner = :engine
       OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))
RETURNING *

-- due_timers --
-- CROSS JOIN keeps the timers outside: read the few due ones by their index, then look
-- each execution up, never the other way round (a million waiting executions).
SELECT t.execution_id, t.timer, t.fire_at FROM timers t
CROSS JOIN executions e ON e.id = t.execution_id
WHERE t.fire_at <= :until
  AND e.status IN ('running', 'waiting', 'stuck')
  AND e.workflow || '@' || e.version IN (SELECT value FROM json_each(:runnable))
  AND (e.owner IS NULL OR :exclusive OR e.owner = :engine
       OR e.owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))
ORDER BY t.fire_at
LIMIT :limit

-- events_at --
SELECT e.execution_id, e.seq, e.data FROM events e
JOIN json_each(:keys) k
  ON e.execution_id = json_extract(k.value, '$[0]') AND e.seq = json_extract(k.value, '$[1]')

-- heartbeat --
INSERT INTO engines (id, info, heartbeat_at) VALUES (:engine, :info, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- engines --
SELECT id, info, heartbeat_at FROM engines

-- release_executions --
UPDATE executions SET owner = NULL WHERE owner = :engine

-- delete_engine --
DELETE FROM engines WHERE id = :engine

-- send --
INSERT INTO inbox (execution_id, kind, name, payload, created_at)
VALUES (:id, :kind, :name, :payload, :now)

-- receive --
-- Requests for executions this engine owns, or may claim (no live owner). The inbox is
-- read first (CROSS JOIN): it is small, the executions table may be huge.
SELECT i.* FROM inbox i CROSS JOIN executions e ON e.id = i.execution_id
WHERE e.status IN ('queued', 'running', 'waiting', 'stuck')
  AND (e.workflow || '@' || e.version IN (SELECT value FROM json_each(:runnable))
       OR i.kind = 'migrate')
  AND (e.owner IS NULL OR :exclusive OR e.owner = :engine
       OR e.owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))
ORDER BY i.id LIMIT :limit

-- drop_stale --
-- Requests that reached the inbox after their execution ended: nothing will take them.
DELETE FROM inbox WHERE id IN (
    SELECT i.id FROM inbox i LEFT JOIN executions e ON e.id = i.execution_id
    WHERE e.id IS NULL OR e.status IN ('completed', 'failed', 'cancelled')
    ORDER BY i.id LIMIT :limit
)
RETURNING *

-- save_blueprint --
INSERT OR IGNORE INTO blueprints (version, workflow, label, blueprint, created_at)
VALUES (?, ?, ?, ?, ?)

-- get_blueprint --
SELECT * FROM blueprints WHERE version = ?

-- stranded --
-- Unfinished graph executions of workflows this engine runs, at versions it does not
-- run, that no live engine holds.
SELECT * FROM executions
WHERE status IN ('running', 'waiting', 'stuck') AND kind = 'graph'
  AND workflow IN (SELECT key FROM json_each(:runnable))
  AND workflow || '@' || version NOT IN
      (SELECT key || '@' || value FROM json_each(:runnable))
  AND (:all OR waiting_for IS NULL)
  AND (owner IS NULL OR owner = :engine OR :exclusive
       OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))
ORDER BY created_at
LIMIT :limit

-- set_waiting --
UPDATE executions SET waiting_for = ?, owner = COALESCE(?, owner) WHERE id = ?

-- move --
UPDATE executions SET version = :to_version, waiting_for = NULL,
    owner = COALESCE(:owner, owner), updated_at = :at
WHERE id = :id AND version = :from_version AND status IN ('running', 'waiting', 'stuck')
  AND (owner IS NULL OR owner = :owner OR :exclusive
       OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))

-- engine_alive --
SELECT 1 FROM engines WHERE id = ? AND heartbeat_at > ?

-- insert_task --
INSERT INTO tasks
    (id, execution_id, kind, name, queue, attempt, idempotency_key, inputs, timeout,
     heartbeat_timeout, status, worker_id, lease_until, claims, created_at, available_at,
     priority)
VALUES (:id, :execution_id, :kind, :name, :queue, :attempt, :idempotency_key, :inputs,
        :timeout, :heartbeat_timeout, :status, :worker_id, :lease_until, :claims, :created_at,
        :available_at, :priority)

-- task_done --
UPDATE tasks SET status = 'done', lease_until = NULL WHERE id = ?

-- claim_tasks --
-- Two halves, each read through its own index: the ready tasks of the worker's queues
-- and names that are available, and the leases that ran out. The claim takes the
-- write lock (BEGIN IMMEDIATE), so no two claimers see the same row as claimable.
UPDATE tasks SET status = 'leased', worker_id = :worker, lease_until = :now + :lease,
    claims = claims + 1
WHERE id IN (
    SELECT id FROM (
        SELECT id, kind, name, priority, available_at FROM tasks
        WHERE status = 'ready'
          AND queue IN (SELECT value FROM json_each(:queues))
          AND name IN (SELECT value FROM json_each(:names))
          AND available_at <= :now
        UNION ALL
        SELECT id, kind, name, priority, available_at FROM tasks
        WHERE status = 'leased' AND lease_until <= :now
          AND queue IN (SELECT value FROM json_each(:queues))
    )
    WHERE kind || ':' || name IN (SELECT value FROM json_each(:hosted))
    ORDER BY priority DESC, available_at, id
    LIMIT :limit
)
RETURNING *

-- heartbeat_task --
UPDATE tasks SET lease_until = :now + :lease
WHERE id = :id AND worker_id = :worker AND status = 'leased'

-- release_tasks --
UPDATE tasks SET status = 'ready', worker_id = NULL, lease_until = NULL
WHERE worker_id = :worker AND status = 'leased'

-- release_these --
UPDATE tasks SET status = 'ready', worker_id = NULL, lease_until = NULL
WHERE worker_id = :worker AND status = 'leased' AND id IN (SELECT value FROM json_each(:ids))

-- get_task --
SELECT * FROM tasks WHERE id = ?

-- tasks_in_flight --
SELECT * FROM tasks
WHERE execution_id IN (SELECT value FROM json_each(:ids)) AND status <> 'done'
ORDER BY created_at, id

-- unfinished_tasks --
SELECT * FROM tasks WHERE status <> 'done'
ORDER BY created_at, id
LIMIT :limit

-- task_counts --
SELECT queue,
       sum((status = 'ready' AND available_at <= :now)
           OR (status = 'leased' AND lease_until <= :now)) AS ready,
       sum(status = 'ready' AND available_at > :now) AS delayed,
       sum(status = 'leased' AND lease_until > :now) AS leased
FROM tasks WHERE status <> 'done'
GROUP BY queue ORDER BY queue

-- admit --
-- Queued executions of a queue that may run now (see the PostgreSQL query): the write
-- lock the transaction holds makes the count and the update one step.
UPDATE executions SET status = 'running', admitted_at = :now, owner = :engine
WHERE id IN (
    SELECT id FROM executions
    WHERE queue = :queue AND status = 'queued'
    ORDER BY priority DESC, created_at, id
    LIMIT max(0, min(
        :most,
        :concurrency - (SELECT count(*) FROM executions
                        WHERE queue = :queue AND status IN ('running', 'waiting', 'stuck')),
        :rate - (SELECT count(*) FROM executions
                 WHERE queue = :queue AND admitted_at > :now - :period)
    ))
)
RETURNING id

-- live_dedup --
SELECT id FROM executions
WHERE queue = ? AND dedup_id = ? AND status IN ('queued', 'running', 'waiting', 'stuck')
