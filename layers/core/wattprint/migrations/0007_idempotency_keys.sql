-- The first answer to each POST /events that carried an Idempotency-Key, so that a retry (same client, key and
-- body) gets it again instead of storing its events twice. Written in the transaction that stores the events:
-- either both count or neither does. Keys are per client (the authorizer's principal, one per token) and expire
-- after 24 hours (wattprint.ingest.KEY_TTL): an expired row is replaced by the next request with its key, and the
-- hourly sweep deletes the others.
CREATE TABLE idempotency_keys (
    principal   text        NOT NULL,
    key         text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    body_sha256 bytea       NOT NULL CHECK (octet_length(body_sha256) = 32),
    ids         bigint[]    NOT NULL,
    total       bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
