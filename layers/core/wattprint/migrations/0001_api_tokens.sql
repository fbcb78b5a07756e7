-- Bearer tokens for sensors (scope ingest) and dashboards (scope read).
-- Only a SHA-256 of each token is kept: tokens are 256-bit random strings, so a fast hash is enough
-- (nothing to brute-force), and the plain token is shown once, when it is created.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL,
    scope        text        NOT NULL CHECK (scope IN ('ingest', 'read')),
    token_sha256 bytea       NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- A name identifies one live token at a time, so "revoke sensor-7" is unambiguous.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
