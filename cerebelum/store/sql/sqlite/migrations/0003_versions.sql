-- Versioning of graph workflows: what a stranded execution waits for, and every
-- blueprint an execution was started on, so that a later engine can compare.
ALTER TABLE executions ADD COLUMN waiting_for TEXT;

CREATE TABLE blueprints (
    version    TEXT PRIMARY KEY,
    workflow   TEXT NOT NULL,
    label      TEXT NOT NULL,
    blueprint  BLOB NOT NULL,
    created_at REAL NOT NULL
);

-- the executions marked as waiting for a version: few, looked at by every claim
CREATE INDEX executions_waiting_for ON executions (workflow) WHERE waiting_for IS NOT NULL;
