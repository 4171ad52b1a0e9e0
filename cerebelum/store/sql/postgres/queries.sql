-- commit --
-- One group commit in one statement (one round trip, atomic on its own).
-- $1-$9: creates; $10-$14: events; $15-$19: status changes; $20-$21: timers cleared
-- ('*' clears them all); $22-$24: timers set; $25: inbox items consumed.
-- A create whose id exists already is left out whole: its events, status and timers too.
WITH
created AS (
    INSERT INTO executions
        (id, workflow, version, kind, status, inputs, output, error, parent_id, owner,
         created_at, updated_at)
    SELECT c.id, c.workflow, c.version, c.kind, c.status, c.inputs, c.output, c.error,
           c.parent_id, c.owner, c.at, c.at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                $7::bytea[], $8::bytea[], $9::text[], $26::text[], $27::float8[])
         AS c(id, workflow, version, kind, status, inputs, output, error, parent_id, owner, at)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
refused AS (
    SELECT id FROM unnest($1::text[]) AS r(id)
    WHERE id NOT IN (SELECT id FROM created)
),
new_events AS (
    INSERT INTO events (execution_id, seq, type, at, data)
    SELECT * FROM unnest($10::text[], $11::int[], $12::text[], $13::float8[], $14::bytea[])
         AS e(execution_id, seq, type, at, data)
    WHERE e.execution_id NOT IN (SELECT id FROM refused)
),
changed AS (
    UPDATE executions x
    SET status = s.status, output = s.output, error = s.error, updated_at = s.at
    FROM unnest($15::text[], $16::text[], $17::bytea[], $18::bytea[], $19::float8[])
         AS s(id, status, output, error, at)
    WHERE x.id = s.id
),
cleared AS (
    DELETE FROM timers t
    USING unnest($20::text[], $21::text[]) AS d(execution_id, timer)
    WHERE t.execution_id = d.execution_id
      AND (d.timer = '*' OR t.timer = d.timer)
      AND (t.execution_id, t.timer) NOT IN (
          SELECT * FROM unnest($22::text[], $23::text[]))
),
set_timers AS (
    INSERT INTO timers (execution_id, timer, fire_at)
    SELECT * FROM unnest($22::text[], $23::text[], $24::float8[]) AS s(execution_id, timer, fire_at)
    WHERE s.execution_id NOT IN (SELECT id FROM refused)
    ON CONFLICT (execution_id, timer) DO UPDATE SET fire_at = excluded.fire_at
),
consumed AS (
    DELETE FROM inbox WHERE id = ANY($25::bigint[])
)
SELECT id FROM refused

-- history --
SELECT data FROM events WHERE execution_id = $1 ORDER BY seq

-- get_execution --
SELECT * FROM executions WHERE id = $1

-- claim --
UPDATE executions SET owner = $1
WHERE id IN (
    SELECT id FROM executions
    WHERE status IN ('running', 'waiting', 'stuck')
      AND workflow || '@' || version = ANY($5::text[])
      AND (owner IS NULL
           OR owner NOT IN (SELECT id FROM engines WHERE heartbeat_at > $2::float8 - $3::float8))
    ORDER BY created_at
    LIMIT $4::int
    FOR UPDATE SKIP LOCKED
)
RETURNING *

-- heartbeat --
INSERT INTO engines (id, info, heartbeat_at) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- release_executions --
UPDATE executions SET owner = NULL WHERE owner = $1

-- delete_engine --
DELETE FROM engines WHERE id = $1

-- send --
INSERT INTO inbox (execution_id, kind, name, payload, created_at) VALUES ($1, $2, $3, $4, $5)

-- receive --
SELECT i.* FROM inbox i JOIN executions e ON e.id = i.execution_id
WHERE e.owner = $1 ORDER BY i.id LIMIT $2
