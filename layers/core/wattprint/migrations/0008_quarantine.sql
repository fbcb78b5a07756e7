-- Events an operator took out of clustering (wattprint.clustering.quarantine): stored, still served by the report API,
-- but left out of every run that loads its data while they are here. Releasing an event deletes its row.
CREATE TABLE quarantined_events (
    seq            bigint      PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
    reason         text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- How many events with seq <= threshold the run left out because they were quarantined when it loaded its data
-- (NULL: the run has not loaded yet). Which ones: the seqs <= threshold that have no label in the run.
ALTER TABLE clustering_runs ADD COLUMN excluded bigint CHECK (excluded >= 0);
