-- What a clustering run records about itself (see wattprint.clustering).
ALTER TABLE clustering_runs
    ADD COLUMN attempts     integer     NOT NULL DEFAULT 0,
    ADD COLUMN started_at   timestamptz,
    ADD COLUMN finished_at  timestamptz,
    -- A worker owns a `running` run until lease_until; past it (the worker died), another may take over.
    ADD COLUMN lease_until  timestamptz,
    ADD COLUMN events       bigint,          -- rows clustered (= threshold when done)
    ADD COLUMN bandwidth    float8,
    ADD COLUMN n_clusters   integer,         -- clusters found, label -1 not counted
    ADD COLUMN centres      float8[],        -- n_clusters x 8, in label order (MeanShift.cluster_centers_)
    ADD COLUMN load_ms      float8,
    ADD COLUMN fit_ms       float8,
    ADD COLUMN store_ms     float8,
    ADD COLUMN error        text;

-- "The current run": the completed run with the highest threshold.
CREATE INDEX clustering_runs_done ON clustering_runs (threshold DESC) WHERE status = 'done';

-- The label of every event in every completed run: run R labels the events with seq <= R.threshold.
-- Partitioned by run: each run's labels are COPYed into a fresh table, indexed, then attached, so a run
-- of a million events writes in seconds and an old run's labels can be dropped at once if ever needed.
CREATE TABLE event_labels (
    run_id bigint   NOT NULL,
    seq    bigint   NOT NULL,
    label  smallint NOT NULL,   -- -1: MeanShift left the event in no cluster (cluster_all=False)
    PRIMARY KEY (run_id, seq)
) PARTITION BY LIST (run_id);

CREATE INDEX event_labels_by_label ON event_labels (run_id, label, seq);

-- Per run and label (-1 included), what the report serves without re-aggregating events.
CREATE TABLE cluster_stats (
    run_id            bigint  NOT NULL REFERENCES clustering_runs (id),
    label             integer NOT NULL,
    events            bigint  NOT NULL,
    mean_active_power_w float8 NOT NULL,
    min_active_power_w  float8 NOT NULL,
    max_active_power_w  float8 NOT NULL,
    -- Means of the eight clustering features, in wattprint.features.FEATURES order.
    centre            float8[] NOT NULL CHECK (cardinality(centre) = 8),
    PRIMARY KEY (run_id, label)
);
