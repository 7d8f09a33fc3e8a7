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

ALTER TABLE invite_targets ADD COLUMN import_id INTEGER REFERENCES invite_imports (id) ON DELETE SET NULL;

CREATE TABLE invite_target_keys (
    task_id   INTEGER NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    key       TEXT    NOT NULL,
    target_id INTEGER NOT NULL REFERENCES invite_targets (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, key)
) WITHOUT ROWID;
CREATE INDEX idx_invite_target_keys_target ON invite_target_keys (target_id);

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
