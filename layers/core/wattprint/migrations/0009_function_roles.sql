-- Each function logs in as a role of its own (wattprint.migrate.ROLES, granted after every migration run), so the
-- live function may no longer read api_tokens to learn whose a connection is: $connect records the token's id,
-- which the authorizer hands it, for the per-token connection cap and for closing a revoked token's connections.
-- Connections opened before this migration have none: they count for no token and end within API Gateway's
-- two-hour connection limit.
ALTER TABLE live_connections ADD COLUMN token_id bigint;

CREATE INDEX live_connections_token ON live_connections (token_id, connected_at);
