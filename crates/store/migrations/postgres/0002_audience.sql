-- Audience import: normalised identifier keys (one person per task, enforced by unique indexes),
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

-- Informational (which import brought the target); not a foreign key, so a bulk insert pays no check.
ALTER TABLE invite_targets ADD COLUMN import_id BIGINT;

-- A person's normalised identifiers ("u:anna_k", "i:100200301", "p:+79123456789"): one person per task,
-- enforced by the database.
ALTER TABLE invite_targets ADD COLUMN username_key VARCHAR(300);
ALTER TABLE invite_targets ADD COLUMN user_id_key VARCHAR(300);
ALTER TABLE invite_targets ADD COLUMN phone_key VARCHAR(300);
CREATE UNIQUE INDEX uq_invite_targets_username ON invite_targets (task_id, username_key) WHERE username_key IS NOT NULL;
CREATE UNIQUE INDEX uq_invite_targets_user_id ON invite_targets (task_id, user_id_key) WHERE user_id_key IS NOT NULL;
CREATE UNIQUE INDEX uq_invite_targets_phone ON invite_targets (task_id, phone_key) WHERE phone_key IS NOT NULL;

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
