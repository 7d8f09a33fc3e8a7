-- The campaign engine: target claims under an expiring lease with an epoch (a settlement applies only
-- while its epoch is current), retry times and pins for targets given back, what each account found of
-- a task's channel, and the indexes the scheduler's queries use. Times are INTEGER microseconds (UTC).

ALTER TABLE invite_targets ADD COLUMN lease_account TEXT;
ALTER TABLE invite_targets ADD COLUMN lease_until INTEGER;
-- Bumped by every claim and kept when a lease is reclaimed: a worker whose lease expired cannot settle.
ALTER TABLE invite_targets ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
-- A pending target given back is not due before this time.
ALTER TABLE invite_targets ADD COLUMN next_attempt_at INTEGER;
-- A pending target only this account may take (a message whose outcome is unknown).
ALTER TABLE invite_targets ADD COLUMN pinned_account TEXT;

-- The next due target of a task, lowest id first (claims), and the expired leases (reclaims).
CREATE INDEX idx_invite_targets_due ON invite_targets (task_id, id, next_attempt_at, pinned_account)
    WHERE status = 'pending';
CREATE INDEX idx_invite_targets_lease ON invite_targets (lease_until) WHERE status = 'in_progress';

ALTER TABLE invite_task_accounts ADD COLUMN channel TEXT;
ALTER TABLE invite_task_accounts ADD COLUMN updated_at INTEGER;

-- The newest rows of a task's log (the circuit breaker's recent outcomes).
CREATE INDEX idx_invite_logs_task_id ON invite_execution_logs (task_id, id);
