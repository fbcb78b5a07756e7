-- Dashboards connected to the live WebSocket API ($connect inserts, $disconnect or a push that finds the
-- connection gone deletes). The live function reads them to know whom to push to.
CREATE TABLE live_connections (
    connection_id text        PRIMARY KEY,
    connected_at  timestamptz NOT NULL DEFAULT now(),
    token_name    text
);
