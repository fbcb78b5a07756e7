-- Live appliance states (wattprint.appliances.states, issue 16): the sensors' events decoded with the stored
-- appliance models as they arrive. Decoding walks the events in seq order from one cursor; each device carries its
-- decoder (the Viterbi forward costs, the readings not yet decided, the running fit) between calls; each device x
-- appliance keeps its latest state and since when.
CREATE TABLE appliance_decoding (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Events up to this seq are decoded. It starts at the events stored now: states are about now, and history
    -- from before there were models would cost a long catch-up for nothing anyone reads.
    after_seq bigint  NOT NULL
);
INSERT INTO appliance_decoding (after_seq) SELECT total FROM event_counter;

CREATE TABLE appliance_decoders (
    device_id  integer     PRIMARY KEY,
    -- Which models (names and when trained) `carried` belongs to: other models start the device afresh.
    models     text        NOT NULL,
    carried    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE appliance_states (
    device_id integer     NOT NULL,
    -- A model's name (appliance_models.name): the same text as the labelled CSV's column.
    appliance text        NOT NULL CHECK (length(appliance) BETWEEN 1 AND 64),
    state     text        NOT NULL,
    since     timestamptz NOT NULL, -- the sensor time of the first reading decoded in this state
    since_seq bigint      NOT NULL,
    seen_at   timestamptz NOT NULL, -- the sensor time of the latest reading decided
    seen_seq  bigint      NOT NULL,
    PRIMARY KEY (device_id, appliance)
);
