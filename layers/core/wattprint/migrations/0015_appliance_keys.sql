-- Appliance keys (wattprint.appliances, issue 16 part 1): MeanShift numbers a run's clusters afresh, so label 2 of
-- one run may be label 1 of the next. A key is one appliance across runs: each run's clusters are matched to the
-- keys known when it completes (by centre), a matched cluster keeps its key, an unmatched one gets a new key, and a
-- key no cluster matched stays with the last run that saw it ("not seen since run N"). People name keys, not labels.
CREATE TABLE appliances (
    key          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The centre the key was last seen at (FEATURES order): what the next run's clusters are matched to.
    centre       float8[] NOT NULL CHECK (cardinality(centre) = 8),
    first_run_id bigint   NOT NULL REFERENCES clustering_runs (id),
    last_run_id  bigint   NOT NULL REFERENCES clustering_runs (id),
    name         text     CHECK (length(name) BETWEEN 1 AND 64),
    kind         text     CHECK (length(kind) BETWEEN 1 AND 32),
    named_at     timestamptz
);
-- A name labels a dashboard's legend and a CSV's column of names: two "Kettle"s would be indistinguishable.
CREATE UNIQUE INDEX appliances_name ON appliances (lower(name));

-- Each cluster of each run (label -1, no cluster, has none). The label stays MeanShift's, as the spec says.
ALTER TABLE cluster_stats ADD COLUMN appliance_key integer REFERENCES appliances (key);
