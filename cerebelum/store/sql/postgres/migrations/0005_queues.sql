-- Queues of executions: an execution started on a queue waits (status 'queued') until
-- the queue admits it: within its concurrency, its rate limit, by priority then age.
ALTER TABLE executions ADD COLUMN queue TEXT;
ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN dedup_id TEXT;
ALTER TABLE executions ADD COLUMN admitted_at DOUBLE PRECISION;

-- what an admission reads: the queued executions of a queue, in the order they are taken
CREATE INDEX executions_queued ON executions (queue, priority DESC, created_at)
    WHERE status = 'queued';
-- what it counts: the queue's executions admitted and not ended, and recent admissions
CREATE INDEX executions_admitted ON executions (queue, admitted_at) WHERE queue IS NOT NULL;
-- one live execution per dedup id and queue
CREATE UNIQUE INDEX executions_dedup ON executions (queue, dedup_id)
    WHERE dedup_id IS NOT NULL AND status IN ('queued', 'running', 'waiting', 'stuck');
