-- The same model as the PostgreSQL schema with portable types: enums are TEXT with CHECKs, JSON is
-- TEXT, timestamps are INTEGER microseconds since the Unix epoch (UTC), written from the service clock.

CREATE TABLE invite_tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          INTEGER NOT NULL,
    name             TEXT    NOT NULL,
    name_folded      TEXT    NOT NULL,
    description      TEXT,
    platform         TEXT    NOT NULL,
    action_type      TEXT    NOT NULL CHECK (action_type IN ('invite_to_group', 'send_message')),
    target_channel   TEXT,
    message_template TEXT,
    status           TEXT    NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'PAUSED')),
    status_reason    TEXT,
    priority         TEXT    NOT NULL DEFAULT 'MEDIUM' CHECK (priority IN ('LOW', 'MEDIUM', 'HIGH')),
    scheduled_start  INTEGER,
    settings         TEXT    NOT NULL DEFAULT '{}',
    target_count     INTEGER NOT NULL DEFAULT 0,
    completed_count  INTEGER NOT NULL DEFAULT 0,
    failed_count     INTEGER NOT NULL DEFAULT 0,
    skipped_count    INTEGER NOT NULL DEFAULT 0,
    error_message    TEXT,
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE INDEX idx_invite_tasks_user_status ON invite_tasks (user_id, status);
CREATE INDEX idx_invite_tasks_user_created ON invite_tasks (user_id, created_at);

CREATE TABLE invite_targets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id          INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    username         TEXT,
    phone_number     TEXT,
    user_id_platform TEXT,
    email            TEXT,
    full_name        TEXT,
    first_name       TEXT,
    last_name        TEXT,
    user_data        TEXT    NOT NULL DEFAULT '{}',
    source           TEXT    NOT NULL DEFAULT 'MANUAL' CHECK (source IN ('MANUAL', 'FILE_UPLOAD', 'PARSING_IMPORT')),
    status           TEXT    NOT NULL DEFAULT 'pending',
    reason           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    result           TEXT    NOT NULL DEFAULT '{}',
    error_message    TEXT,
    processed_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX idx_invite_targets_task_status ON invite_targets (task_id, status);

CREATE TABLE invite_task_accounts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id        INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    account_id     TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    cooldown_until INTEGER,
    stats          TEXT    NOT NULL DEFAULT '{}',
    last_used_at   INTEGER,
    UNIQUE (task_id, account_id)
);

CREATE TABLE invite_execution_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    target_id  INTEGER REFERENCES invite_targets (id) ON DELETE CASCADE,
    account_id TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('PENDING', 'SUCCESS', 'FAILED', 'SKIPPED')),
    details    TEXT    NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX idx_invite_logs_task_created ON invite_execution_logs (task_id, created_at);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    object_type TEXT    NOT NULL,
    object_id   TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    client_addr TEXT,
    details     TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);
CREATE INDEX idx_audit_log_user ON audit_log (user_id, id);
