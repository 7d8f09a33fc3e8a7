-- Moves when what the scheduler reads of a task's accounts changes (an account excluded, or one that
-- knows the task's channel): the scheduler reads the roster again only then. `version` moves with
-- every write of the task (each settled target), too often to say that.
ALTER TABLE invite_tasks ADD COLUMN roster_version INTEGER NOT NULL DEFAULT 0;

-- The channels an account found (`known_channel`): without it every look-up scans the table.
CREATE INDEX idx_invite_task_accounts_channel ON invite_task_accounts (account_id) WHERE channel IS NOT NULL;

-- A task's counts by state and retry time (`target_counts`, read once per dispatch) from the index
-- alone; it replaces the (task_id, status) index it extends.
CREATE INDEX idx_invite_targets_task_status_retry ON invite_targets (task_id, status, next_attempt_at);
DROP INDEX idx_invite_targets_task_status;
