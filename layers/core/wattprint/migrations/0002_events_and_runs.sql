-- Parsed sensor events. `seq` is the gapless arrival number in commit order (see event_counter), `raw` the
-- text as received so events can be re-parsed when the parser improves.
CREATE TABLE events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq                bigint      NOT NULL UNIQUE,
    received_at        timestamptz NOT NULL DEFAULT now(),
    device_id          integer     NOT NULL,
    firmware           text        NOT NULL,
    event_type         integer     NOT NULL,
    coil_reversed      boolean     NOT NULL,
    active_power_w     float8      NOT NULL,
    reactive_power_var float8      NOT NULL,
    apparent_power_va  float8      NOT NULL,
    current_a          float8      NOT NULL,
    voltage_v          float8      NOT NULL,
    phase_rad          float8      NOT NULL,
    peaks              float8[]    NOT NULL CHECK (cardinality(peaks) >= 3),
    fft_re             float8[]    NOT NULL,
    fft_img            float8[]    NOT NULL CHECK (cardinality(fft_img) = cardinality(fft_re)),
    sensor_time        timestamptz NOT NULL,
    frequency_hz       float8      NOT NULL,
    wifi_strength_dbm  integer     NOT NULL,
    dummy              integer     NOT NULL,
    raw                text        NOT NULL
);

CREATE INDEX events_device_seq ON events (device_id, seq);
CREATE INDEX events_received_at ON events (received_at, seq);

-- One row holding the number of events stored. Writers take its row lock to number their events, so seq
-- is assigned in commit order with no gaps (a rolled-back request releases its numbers).
CREATE TABLE event_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    total     bigint  NOT NULL DEFAULT 0
);
INSERT INTO event_counter DEFAULT VALUES;

-- One clustering run per threshold (1000, 2000, …), written in the same transaction as the events that
-- reach it: an outbox. `enqueued_at` is set once its SQS message is sent; the sweep re-sends the others.
CREATE TABLE clustering_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    threshold   bigint      NOT NULL UNIQUE CHECK (threshold > 0),
    status      text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'running', 'done', 'failed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    enqueued_at timestamptz,
    sends       integer     NOT NULL DEFAULT 0
);

CREATE INDEX clustering_runs_unsent ON clustering_runs (created_at) WHERE enqueued_at IS NULL;
