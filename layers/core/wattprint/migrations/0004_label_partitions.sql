-- Why this migration exists: a clustering run stores its labels by creating a standalone table, COPYing into
-- it and attaching it to event_labels (see 0003). In AWS the functions log in as wattprint_app, which may
-- read and write rows but may not create tables (no CREATE on the schema), and ATTACH PARTITION requires
-- owning event_labels, which the master user (the migrations' user) owns. These two functions run as their
-- owner and do exactly that DDL, for a run that is `running` and for nothing else.
--
-- Both are called by wattprint.clustering inside the one transaction that also writes cluster_stats and marks
-- the run done, so a crash leaves neither a half-filled table nor a half-attached one.

-- The guard of both: they act for a run that is `running` and for nothing else.
CREATE FUNCTION clustering_run_is_running(p_run bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM clustering_runs WHERE id = p_run AND status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'clustering run % is not running', p_run USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;

-- Drops any table a previous attempt of this run left (or this run's earlier partition, if an operator reset
-- the run to recompute it), creates an empty one shaped like event_labels with the CHECK that lets the attach
-- skip its validation scan, lets the calling login COPY into it, and returns its qualified name.
CREATE FUNCTION clustering_labels_open(p_run bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    tbl text := 'event_labels_r' || p_run;
BEGIN
    PERFORM clustering_run_is_running(p_run);
    EXECUTE format('DROP TABLE IF EXISTS %I', tbl);
    -- No indexes yet: the attach builds the parent's primary key and index on the filled table, in one pass.
    EXECUTE format('CREATE TABLE %I (LIKE event_labels, CONSTRAINT %I CHECK (run_id = %s))', tbl, tbl || '_run', p_run);
    EXECUTE format('GRANT INSERT ON %I TO %I', tbl, session_user);
    RETURN format('%I.%I', current_schema(), tbl);
END
$$;

CREATE FUNCTION clustering_labels_attach(p_run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    tbl text := 'event_labels_r' || p_run;
BEGIN
    PERFORM clustering_run_is_running(p_run);
    EXECUTE format('ALTER TABLE event_labels ATTACH PARTITION %I FOR VALUES IN (%s)', tbl, p_run);
END
$$;

-- A SECURITY DEFINER function must not resolve names through its caller's search_path: pin it to the schema
-- these tables live in (the one being migrated), then pg_temp last so a caller's temp table cannot shadow them.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION clustering_labels_open(bigint) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION clustering_labels_attach(bigint) SET search_path = %I, pg_temp', current_schema());
END
$$;

-- PostgreSQL lets PUBLIC execute a new function; these two run with their owner's rights, so only the app's
-- login (granted by wattprint.migrate) and the owner may call them.
REVOKE EXECUTE ON FUNCTION clustering_labels_open(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION clustering_labels_attach(bigint) FROM PUBLIC;
