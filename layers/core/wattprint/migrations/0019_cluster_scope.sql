-- Issue 17, ClusterScope=device: each device's events form a set of their own, numbered by a gapless per-device
-- sequence, with thresholds and runs of their own. ClusterScope=all (the default) uses none of this: its events
-- keep device_seq NULL and its runs device_id NULL, and every query it makes is the one it made before.

-- An event's number among its device's events, in commit order (device scope only). The global seq stays: labels,
-- quarantine, cursors and live updates key on it; within a device both orders agree (both are assigned under the
-- event counter's row lock).
ALTER TABLE events ADD COLUMN device_seq bigint CHECK (device_seq > 0);
-- What a device's run loads (device_id, device_seq ≤ T), and the proof the numbering has no duplicate.
CREATE UNIQUE INDEX events_device_number ON events (device_id, device_seq) WHERE device_seq IS NOT NULL;

-- Each device's count of events, taken (row-locked) by the ingest that numbers its events: device scope only.
CREATE TABLE device_counters (
    device_id integer PRIMARY KEY,
    total     bigint  NOT NULL CHECK (total > 0)
);

-- The scope the stored events were numbered under: NULL until the first event, then fixed. Ingest sets it with the
-- first event and refuses a request of the other scope (wattprint.ingest.store: ClusterScopeMismatch), so a
-- deployment cannot switch scope on existing data by changing a parameter. A database that already holds events was
-- filled with ClusterScope=all, the only scope there was.
ALTER TABLE event_counter ADD COLUMN scope text CHECK (scope IN ('all', 'device'));
UPDATE event_counter SET scope = 'all' WHERE total > 0;

-- A device's run: device_id set, threshold counted in that device's events. One run per threshold per set.
ALTER TABLE clustering_runs ADD COLUMN device_id integer;
ALTER TABLE clustering_runs DROP CONSTRAINT clustering_runs_threshold_key;
CREATE UNIQUE INDEX clustering_runs_threshold ON clustering_runs (threshold) WHERE device_id IS NULL;
CREATE UNIQUE INDEX clustering_runs_device_threshold ON clustering_runs (device_id, threshold)
    WHERE device_id IS NOT NULL;
-- A device's current run, its runs with labels (retention, 410s) and its later runs (supersession).
CREATE INDEX clustering_runs_device_done ON clustering_runs (device_id, threshold DESC) WHERE status = 'done';

-- clustering_labels_retire (0016) among the runs of one set: p_device's runs (ClusterScope=device), or the runs of
-- no device (p_device NULL, the default, ClusterScope=all: what 0016's did, called the same way), so one device's runs
-- never retire another's labels.
DROP FUNCTION clustering_labels_retire(integer);
CREATE FUNCTION clustering_labels_retire(p_keep integer, p_device integer DEFAULT NULL) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    r bigint;
BEGIN
    IF p_keep IS NULL OR p_keep < 1 THEN
        RAISE EXCEPTION 'clustering_labels_retire keeps at least one run, not %', p_keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- DROP of a partition locks event_labels exclusively: wait briefly for readers, never queue them for long.
    PERFORM set_config('lock_timeout', '5s', true);
    FOR r IN
        UPDATE clustering_runs SET labels_retired_at = now()
        WHERE device_id IS NOT DISTINCT FROM p_device AND status = 'done' AND labels_retired_at IS NULL
          AND id NOT IN (SELECT id FROM clustering_runs WHERE device_id IS NOT DISTINCT FROM p_device
                         AND status = 'done' ORDER BY threshold DESC LIMIT p_keep)
        RETURNING id
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', 'event_labels_r' || r);
        RETURN NEXT r;
    END LOOP;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION clustering_labels_retire(integer, integer) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;

REVOKE EXECUTE ON FUNCTION clustering_labels_retire(integer, integer) FROM PUBLIC;
