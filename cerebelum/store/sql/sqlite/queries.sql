-- insert_execution --
INSERT OR IGNORE INTO executions
    (id, workflow, version, kind, status, inputs, output, error, parent_id, owner, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

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
UPDATE executions SET owner = :engine, waiting_for = NULL
WHERE id IN (
    SELECT id FROM executions
    WHERE status IN ('running', 'waiting', 'stuck')
      AND workflow || '@' || version IN (SELECT value FROM json_each(:runnable))
      AND (owner IS NULL OR :exclusive
           OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > :now - :lease))
    ORDER BY created_at
    LIMIT :limit
)
RETURNING *

-- heartbeat --
INSERT INTO engines (id, info, heartbeat_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- release_executions --
UPDATE executions SET owner = NULL WHERE owner = ?

-- delete_engine --
DELETE FROM engines WHERE id = ?

-- send --
INSERT INTO inbox (execution_id, kind, name, payload, created_at) VALUES (?, ?, ?, ?, ?)

-- receive --
SELECT i.* FROM inbox i JOIN executions e ON e.id = i.execution_id
WHERE e.owner = ? ORDER BY i.id LIMIT ?

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
