-- The Account Manager (SQLite types as in 0001): accounts, per-channel states, and the ledger of grants. The ledger has no
-- foreign key to tasks and no retention: deleting a task or cleaning logs never returns a spent budget.

CREATE TABLE accounts (
    id                 TEXT PRIMARY KEY,
    user_id            INTEGER NOT NULL,
    platform           TEXT NOT NULL,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('session', 'sandbox', 'integration')),
    status             TEXT NOT NULL CHECK (status IN ('active', 'resting', 'restricted', 'blocked')),
    status_reason      TEXT,
    status_until       INTEGER,
    peer_flood_strikes INTEGER NOT NULL DEFAULT 0,
    session_sealed     TEXT,
    api_id             INTEGER,
    api_hash_sealed    TEXT,
    session_facts      TEXT NOT NULL DEFAULT '{}',
    lease_holder       TEXT,
    lease_until        INTEGER,
    lease_epoch        INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX idx_accounts_user_platform ON accounts (user_id, platform);

-- What one account may do in one channel (no rights, exhausted forever).
CREATE TABLE account_channel_states (
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel            TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('no_rights', 'exhausted')),
    reason             TEXT,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (account_id, channel)
);

-- Facts about a channel for every account of every user (a broadcast channel past 200 added members).
CREATE TABLE channel_states (
    platform           TEXT NOT NULL,
    channel            TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('full', 'not_found')),
    reason             TEXT,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (platform, channel)
);

-- Every grant, written before it is returned. account_id is not a foreign key: removing an account
-- keeps what it spent (a re-registered session must not get a fresh budget).
CREATE TABLE am_grants (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id         TEXT NOT NULL,
    action             TEXT NOT NULL,
    channel            TEXT,
    granted_at         INTEGER NOT NULL,
    pause_until        INTEGER NOT NULL,
    consumed           INTEGER NOT NULL DEFAULT 1,
    outcome            TEXT,
    released_at        INTEGER
);
CREATE INDEX idx_am_grants_account_action ON am_grants (account_id, action, granted_at);
CREATE INDEX idx_am_grants_account_channel ON am_grants (account_id, action, channel, granted_at);
