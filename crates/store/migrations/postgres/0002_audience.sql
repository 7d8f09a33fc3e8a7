-- Audience import: normalised identifier keys (one person per task, enforced by the primary key),
-- import records with their reports, and each user's do-not-contact list.

ALTER TABLE invite_targets ADD COLUMN user_id_is_hint BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE invite_targets ADD COLUMN source_row INTEGER;

CREATE TABLE invite_imports (
    id          BIGSERIAL PRIMARY KEY,
    task_id     BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    user_id     BIGINT       NOT NULL,
    source      targetsource NOT NULL,
    file_name   VARCHAR(255),
    dry_run     BOOLEAN      NOT NULL,
    total_rows  INTEGER      NOT NULL,
    valid       INTEGER      NOT NULL,
    invalid     INTEGER      NOT NULL,
    duplicates  INTEGER      NOT NULL,
    excluded    INTEGER      NOT NULL,
    stored      INTEGER      NOT NULL,
    report      JSONB        NOT NULL,
    request_id  VARCHAR(128) NOT NULL,
    created_at  TIMESTAMPTZ  NOT NULL
);
CREATE INDEX idx_invite_imports_task ON invite_imports (task_id, id);

ALTER TABLE invite_targets ADD COLUMN import_id BIGINT REFERENCES invite_imports (id) ON DELETE SET NULL;

CREATE TABLE invite_target_keys (
    task_id   BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    key       VARCHAR(300) NOT NULL,
    target_id BIGINT       NOT NULL REFERENCES invite_targets (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, key)
);
CREATE INDEX idx_invite_target_keys_target ON invite_target_keys (target_id);

CREATE TABLE do_not_contact (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT       NOT NULL,
    key        VARCHAR(300) NOT NULL,
    kind       VARCHAR(16)  NOT NULL,
    value      VARCHAR(255) NOT NULL,
    reason     TEXT,
    created_at TIMESTAMPTZ  NOT NULL,
    UNIQUE (user_id, key)
);
