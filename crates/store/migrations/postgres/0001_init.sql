-- The spec's updated schema, extended with what campaigns need. Timestamps are always written by the
-- service from its clock (no DEFAULT NOW()), so virtual-time runs see consistent times.

CREATE TYPE taskstatus AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'PAUSED');
CREATE TYPE taskpriority AS ENUM ('LOW', 'MEDIUM', 'HIGH');
CREATE TYPE targetsource AS ENUM ('MANUAL', 'FILE_UPLOAD', 'PARSING_IMPORT');
CREATE TYPE executionstatus AS ENUM ('PENDING', 'SUCCESS', 'FAILED', 'SKIPPED');

CREATE TABLE invite_tasks (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT       NOT NULL,
    name             VARCHAR(255) NOT NULL,
    -- lower-cased by the service (Unicode rules), so the name filter behaves the same on every backend
    -- and under any database locale
    name_folded      TEXT         NOT NULL,
    description      VARCHAR(1000),
    platform         VARCHAR(50)  NOT NULL,
    action_type      VARCHAR(32)  NOT NULL CHECK (action_type IN ('invite_to_group', 'send_message')),
    target_channel   VARCHAR(255),
    message_template TEXT,
    status           taskstatus   NOT NULL DEFAULT 'PENDING',
    status_reason    TEXT,
    priority         taskpriority NOT NULL DEFAULT 'MEDIUM',
    scheduled_start  TIMESTAMPTZ,
    settings         JSONB        NOT NULL DEFAULT '{}',
    target_count     BIGINT       NOT NULL DEFAULT 0,
    completed_count  BIGINT       NOT NULL DEFAULT 0,
    failed_count     BIGINT       NOT NULL DEFAULT 0,
    skipped_count    BIGINT       NOT NULL DEFAULT 0,
    error_message    TEXT,
    version          BIGINT       NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ  NOT NULL,
    updated_at       TIMESTAMPTZ  NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);
CREATE INDEX idx_invite_tasks_user_status ON invite_tasks (user_id, status);
CREATE INDEX idx_invite_tasks_user_created ON invite_tasks (user_id, created_at);

CREATE TABLE invite_targets (
    id               BIGSERIAL PRIMARY KEY,
    task_id          BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    username         VARCHAR(255),
    phone_number     VARCHAR(20),
    user_id_platform VARCHAR(255),
    email            VARCHAR(255),
    full_name        VARCHAR(255),
    first_name       VARCHAR(255),
    last_name        VARCHAR(255),
    user_data        JSONB        NOT NULL DEFAULT '{}',
    source           targetsource NOT NULL DEFAULT 'MANUAL',
    status           VARCHAR(20)  NOT NULL DEFAULT 'pending',
    reason           VARCHAR(64),
    attempts         INTEGER      NOT NULL DEFAULT 0,
    result           JSONB        NOT NULL DEFAULT '{}',
    error_message    TEXT,
    processed_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ  NOT NULL,
    updated_at       TIMESTAMPTZ  NOT NULL
);
CREATE INDEX idx_invite_targets_task_status ON invite_targets (task_id, status);

CREATE TABLE invite_task_accounts (
    id             BIGSERIAL PRIMARY KEY,
    task_id        BIGINT       NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    account_id     VARCHAR(255) NOT NULL,
    platform       VARCHAR(20)  NOT NULL,
    status         VARCHAR(20)  NOT NULL,
    cooldown_until TIMESTAMPTZ,
    stats          JSONB        NOT NULL DEFAULT '{}',
    last_used_at   TIMESTAMPTZ,
    UNIQUE (task_id, account_id)
);

CREATE TABLE invite_execution_logs (
    id         BIGSERIAL PRIMARY KEY,
    task_id    BIGINT          NOT NULL REFERENCES invite_tasks (id) ON DELETE CASCADE,
    target_id  BIGINT          REFERENCES invite_targets (id) ON DELETE CASCADE,
    account_id VARCHAR(255)    NOT NULL,
    action     VARCHAR(100)    NOT NULL,
    status     executionstatus NOT NULL,
    details    JSONB           NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ     NOT NULL
);
CREATE INDEX idx_invite_logs_task_created ON invite_execution_logs (task_id, created_at);

-- Who changed what, when and from where. Kept apart from tasks: deleting a task keeps its history.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT       NOT NULL,
    action      VARCHAR(64)  NOT NULL,
    object_type VARCHAR(64)  NOT NULL,
    object_id   VARCHAR(255) NOT NULL,
    request_id  VARCHAR(128) NOT NULL,
    client_addr VARCHAR(255),
    details     JSONB        NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ  NOT NULL
);
CREATE INDEX idx_audit_log_user ON audit_log (user_id, id);
