-- Issue 17: labels grow with K runs, not with every run; a run overtaken before it started is superseded.
--
-- A completed run's summary (clustering_runs) and per-cluster statistics (cluster_stats) stay for ever; only its
-- labels (its partition of event_labels) are dropped once LabelRetention newer runs have completed.
-- `labels_retired_at` records when, so the report can answer 410 for a run whose labels are gone.
ALTER TABLE clustering_runs
    ADD COLUMN labels_retired_at timestamptz,
    -- the later run that does a superseded run's work (wattprint.clustering.runs.supersede)
    ADD COLUMN superseded_by     bigint REFERENCES clustering_runs (id);

ALTER TABLE clustering_runs DROP CONSTRAINT clustering_runs_status_check;
ALTER TABLE clustering_runs ADD CONSTRAINT clustering_runs_status_check
    CHECK (status IN ('pending', 'running', 'done', 'failed', 'superseded'));

-- The runs that still have labels, newest first: what a 410 names, and what retention counts.
CREATE INDEX clustering_runs_labelled ON clustering_runs (threshold DESC)
    WHERE status = 'done' AND labels_retired_at IS NULL;

-- Drops the labels of every completed run but the p_keep with the highest thresholds (the current run is always
-- one of them), one DROP TABLE per run, and marks those runs retired in the same transaction: a reader either
-- finds the partition or finds the run retired. The cluster login owns no table, hence SECURITY DEFINER; what it
-- may drop is only what the retention rule says, never the newest run's labels (p_keep >= 1).
CREATE FUNCTION clustering_labels_retire(p_keep integer) RETURNS SETOF bigint
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
        WHERE status = 'done' AND labels_retired_at IS NULL
          AND id NOT IN (SELECT id FROM clustering_runs WHERE status = 'done' ORDER BY threshold DESC LIMIT p_keep)
        RETURNING id
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', 'event_labels_r' || r);
        RETURN NEXT r;
    END LOOP;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION clustering_labels_retire(integer) SET search_path = %I, pg_temp', current_schema());
END
$$;

REVOKE EXECUTE ON FUNCTION clustering_labels_retire(integer) FROM PUBLIC;
