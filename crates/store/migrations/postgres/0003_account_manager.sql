-- The Account Manager: accounts, per-channel states, and the ledger of grants. The ledger has no
-- foreign key to tasks and no retention: deleting a task or cleaning logs never returns a spent budget.

CREATE TABLE accounts (
    id                 VARCHAR(64)  PRIMARY KEY,
    user_id            BIGINT       NOT NULL,
    platform           VARCHAR(20)  NOT NULL,
    name               VARCHAR(255) NOT NULL,
    kind               VARCHAR(16)  NOT NULL CHECK (kind IN ('session', 'sandbox', 'integration')),
    status             VARCHAR(16)  NOT NULL CHECK (status IN ('active', 'resting', 'restricted', 'blocked')),
    status_reason      TEXT,
    status_until       TIMESTAMPTZ,
    peer_flood_strikes INTEGER      NOT NULL DEFAULT 0,
    session_sealed     TEXT,
    api_id             INTEGER,
    api_hash_sealed    TEXT,
    session_facts      JSONB        NOT NULL DEFAULT '{}',
    lease_holder       VARCHAR(64),
    lease_until        TIMESTAMPTZ,
    lease_epoch        BIGINT       NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ  NOT NULL,
    updated_at         TIMESTAMPTZ  NOT NULL
);
CREATE INDEX idx_accounts_user_platform ON accounts (user_id, platform);

-- What one account may do in one channel (no rights, exhausted forever).
CREATE TABLE account_channel_states (
    account_id VARCHAR(64)  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel    VARCHAR(255) NOT NULL,
    state      VARCHAR(16)  NOT NULL CHECK (state IN ('no_rights', 'exhausted')),
    reason     TEXT,
    updated_at TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (account_id, channel)
);

-- Facts about a channel for every account of every user (a broadcast channel past 200 added members).
CREATE TABLE channel_states (
    platform   VARCHAR(20)  NOT NULL,
    channel    VARCHAR(255) NOT NULL,
    state      VARCHAR(16)  NOT NULL CHECK (state IN ('full', 'not_found')),
    reason     TEXT,
    updated_at TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (platform, channel)
);

-- Every grant, written before it is returned. account_id is not a foreign key: removing an account
-- keeps what it spent (a re-registered session must not get a fresh budget).
CREATE TABLE am_grants (
    id          BIGSERIAL    PRIMARY KEY,
    account_id  VARCHAR(64)  NOT NULL,
    action      VARCHAR(32)  NOT NULL,
    channel     VARCHAR(255),
    granted_at  TIMESTAMPTZ  NOT NULL,
    pause_until TIMESTAMPTZ  NOT NULL,
    consumed    BOOLEAN      NOT NULL DEFAULT TRUE,
    outcome     VARCHAR(32),
    released_at TIMESTAMPTZ
);
CREATE INDEX idx_am_grants_account_action ON am_grants (account_id, action, granted_at);
CREATE INDEX idx_am_grants_account_channel ON am_grants (account_id, action, channel, granted_at);
