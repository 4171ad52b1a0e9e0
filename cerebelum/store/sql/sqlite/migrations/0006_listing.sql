-- Listing executions a page at a time, newest first, by keyset (created_at, id): each
-- filter the web UI offers reads one index in order and stops after a page, however many
-- executions the store holds. The id breaks ties between executions created at once.
DROP INDEX executions_status;
DROP INDEX executions_workflow;
DROP INDEX executions_created;
CREATE INDEX executions_status ON executions (status, created_at, id);
CREATE INDEX executions_workflow ON executions (workflow, created_at, id);
CREATE INDEX executions_created ON executions (created_at, id);
