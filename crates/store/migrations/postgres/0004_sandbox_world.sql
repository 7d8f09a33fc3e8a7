-- The sandbox world (a simulated Telegram whose state several processes share through the store). Nothing here
-- refers to the Account Manager's tables: a world account exists as soon as it makes a call.

-- The world's view of an account: its PEER_FLOOD restriction and how often it was restricted. Its row is the
-- account's lock: every call takes it (SELECT … FOR UPDATE) before reading anything.
CREATE TABLE sandbox_accounts (
    account_id       TEXT        PRIMARY KEY,
    restricted_until TIMESTAMPTZ,
    strikes          INTEGER     NOT NULL DEFAULT 0
);

-- Groups and channels, made the first time anyone names them. The id is the world's (derived from the key), not
-- generated here. A call locks its channel's row after its account's.
CREATE TABLE sandbox_channels (
    id         BIGINT      PRIMARY KEY,
    key        TEXT        NOT NULL UNIQUE,
    kind       VARCHAR(16) NOT NULL CHECK (kind IN ('broadcast', 'supergroup', 'basic_group')),
    title      TEXT        NOT NULL,
    added      BIGINT      NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sandbox_members (
    channel_id BIGINT      NOT NULL REFERENCES sandbox_channels (id),
    user_id    BIGINT      NOT NULL,
    added_by   TEXT,
    added_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

-- Every call, whatever its answer: the world's impartial record, and what flood control counts.
CREATE TABLE sandbox_calls (
    id                 BIGSERIAL   PRIMARY KEY,
    at                 TIMESTAMPTZ NOT NULL,
    account_id         TEXT        NOT NULL REFERENCES sandbox_accounts (account_id),
    method             TEXT        NOT NULL,
    channel_id         BIGINT      REFERENCES sandbox_channels (id),
    user_id            BIGINT,
    answer             TEXT        NOT NULL,
    contacted_stranger BOOLEAN     NOT NULL DEFAULT FALSE
);
CREATE INDEX idx_sandbox_calls_method ON sandbox_calls (account_id, method, at);
CREATE INDEX idx_sandbox_calls_strangers ON sandbox_calls (account_id, contacted_stranger, at);

-- What reached someone: a membership (invite) or a message. Telegram drops a repeated random_id per sender, and a
-- person joins a channel once.
CREATE TABLE sandbox_deliveries (
    id          BIGSERIAL   PRIMARY KEY,
    call_id     BIGINT      NOT NULL REFERENCES sandbox_calls (id),
    at          TIMESTAMPTZ NOT NULL,
    account_id  TEXT        NOT NULL,
    kind        VARCHAR(8)  NOT NULL CHECK (kind IN ('invite', 'message')),
    channel_id  BIGINT      REFERENCES sandbox_channels (id),
    user_id     BIGINT      NOT NULL,
    random_id   BIGINT,
    text_sha256 TEXT,
    CHECK (kind <> 'invite' OR channel_id IS NOT NULL),
    CHECK (kind <> 'message' OR random_id IS NOT NULL)
);
CREATE UNIQUE INDEX uq_sandbox_deliveries_message ON sandbox_deliveries (account_id, random_id) WHERE kind = 'message';
CREATE UNIQUE INDEX uq_sandbox_deliveries_invite ON sandbox_deliveries (channel_id, user_id) WHERE kind = 'invite';
