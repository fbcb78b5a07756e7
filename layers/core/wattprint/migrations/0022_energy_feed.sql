-- Issue 18: the sensor events feed their devices' energy series after ingest's commit, not inside it. Inside, the
-- feed ran under the event counter's row lock, which every ingest request holds to its commit, so it serialised
-- ingest (BENCHMARKS.md, ingest). Now the feed function follows the events by a cursor, in seq (commit) order and
-- in batches, like the live appliance states (0018); ingest asks it to look, at most once a second per instance.

CREATE TABLE energy_feed (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Events up to this seq have fed the series. It starts at the events stored now: ingest fed those itself.
    after_seq bigint  NOT NULL
);
INSERT INTO energy_feed (after_seq) SELECT total FROM event_counter;

-- The arrival time that stands in for a repeated sensor clock is the events' received_at (their transaction's
-- start), made non-decreasing in seq order per device: requests take the counter's lock in another order than
-- they began. This is the latest one a device's readings used.
ALTER TABLE energy_sensor_clocks ADD COLUMN arrived_at timestamptz;

-- Ingest writes no energy any more, and a new database's ingest login gets no energy rights (wattprint.migrate).
-- A deployed login keeps those it has: this runs before the functions are updated, and revoking them here would
-- fail the old ingest instances' requests until then. A later migration revokes them.
