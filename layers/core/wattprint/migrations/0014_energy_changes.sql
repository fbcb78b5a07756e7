-- The energy series' change feed: per device, the earliest bucket whose energy changed since a reader (the
-- alerts' scorer) last took the row. A writer marks it in the transaction that changes the buckets; the row's
-- appearance is what sends one message to the energy-changes queue, so a device that reports every second
-- costs about one message per scoring, not one per request.
CREATE TABLE energy_changes (
    device_id integer     PRIMARY KEY,
    since     timestamptz NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);
