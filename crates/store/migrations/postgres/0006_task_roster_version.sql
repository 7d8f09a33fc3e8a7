-- Moves when what the scheduler reads of a task's accounts changes (an account excluded, or one that
-- knows the task's channel): the scheduler reads the roster again only then. `version` moves with
-- every write of the task (each settled target), too often to say that.
ALTER TABLE invite_tasks ADD COLUMN roster_version BIGINT NOT NULL DEFAULT 0;
