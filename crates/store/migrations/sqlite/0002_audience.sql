ALTER TABLE invite_targets ADD COLUMN user_id_is_hint INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invite_targets ADD COLUMN source_row INTEGER;

CREATE TABLE invite_imports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('MANUAL', 'FILE_UPLOAD', 'PARSING_IMPORT')),
    file_name   TEXT,
    dry_run     INTEGER NOT NULL,
    total_rows  INTEGER NOT NULL,
    valid       INTEGER NOT NULL,
    invalid     INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    excluded    INTEGER NOT NULL,
    stored      INTEGER NOT NULL,
    report      TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX idx_invite_imports_task ON invite_imports (task_id, id);

ALTER TABLE invite_targets ADD COLUMN import_id INTEGER;

ALTER TABLE invite_targets ADD COLUMN username_key TEXT;
ALTER TABLE invite_targets ADD COLUMN user_id_key TEXT;
ALTER TABLE invite_targets ADD COLUMN phone_key TEXT;
CREATE UNIQUE INDEX uq_invite_targets_username ON invite_targets (task_id, username_key) WHERE username_key IS NOT NULL;
CREATE UNIQUE INDEX uq_invite_targets_user_id ON invite_targets (task_id, user_id_key) WHERE user_id_key IS NOT NULL;
CREATE UNIQUE INDEX uq_invite_targets_phone ON invite_targets (task_id, phone_key) WHERE phone_key IS NOT NULL;

CREATE TABLE do_not_contact (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    reason     TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, key)
);
