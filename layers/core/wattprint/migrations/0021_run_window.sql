-- Issue 17: a run may cluster only the last N events of its set (CLUSTER_WINDOW, a departure from the spec for sets
-- too large for one invocation). `first_seq` is the lowest seq a done run took: 1 for the spec's whole set (every
-- run before this migration), T - N + 1 for a window; the events before it have no label in that run.
ALTER TABLE clustering_runs
    ADD COLUMN first_seq bigint CHECK (first_seq >= 1 AND first_seq <= threshold);

UPDATE clustering_runs SET first_seq = 1 WHERE status = 'done';
