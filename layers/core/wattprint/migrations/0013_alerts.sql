-- Alerts (issue 15): each device's completed hours scored under both methods, the baselines they used, every
-- device's alerting state, its alerts, and what was told of them (an outbox: a notification row commits with the
-- state change that caused it, so a redelivered or re-run scoring finds it there and tells nothing twice).

-- A baseline per device and day, learnt from the hours before that day: every hour of the day uses it, a
-- re-score of an hour uses it again, and a score names it (its `as_of`).
CREATE TABLE alert_baselines (
    device_id  integer     NOT NULL,
    as_of      date        NOT NULL,
    baseline   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, as_of)
);

CREATE TABLE anomaly_scores (
    device_id  integer     NOT NULL,
    hour       timestamptz NOT NULL,
    method     text        NOT NULL CHECK (method IN ('robust', 'minmax')),
    wh         float8      NOT NULL,
    score      float8,              -- NULL: too little history to score
    anomalous  boolean     NOT NULL,
    direction  text        CHECK (direction IN ('high', 'low')),
    expected   float8,
    usual_low  float8,
    usual_high float8,
    basis      text,
    baseline   date        NOT NULL,
    scored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, method, hour)
);

-- The lifecycle's state (wattprint.alerts.lifecycle.State as JSON) and the last hour it consumed: hours are fed
-- to it once each, in order; a late re-score of an earlier hour updates anomaly_scores only.
CREATE TABLE alert_states (
    device_id integer     PRIMARY KEY,
    state     jsonb       NOT NULL,
    last_hour timestamptz  -- NULL: none yet
);

CREATE TABLE alerts (
    id            bigserial   PRIMARY KEY,
    device_id     integer     NOT NULL,
    number        integer     NOT NULL,  -- the lifecycle's own count per device
    method        text        NOT NULL,
    direction     text        CHECK (direction IN ('high', 'low')),
    status        text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    opened_hour   timestamptz NOT NULL,  -- the first hour of the anomalous run that fired it
    fired_at      timestamptz NOT NULL,  -- the end of the hour that fired it
    resolved_at   timestamptz,
    acked_at      timestamptz,
    peak_wh       float8      NOT NULL,
    last_hour     timestamptz NOT NULL,
    UNIQUE (device_id, number)
);
CREATE INDEX alerts_recent ON alerts (fired_at DESC);

CREATE TABLE alert_notifications (
    id         bigserial   PRIMARY KEY,
    alert_id   bigint      NOT NULL REFERENCES alerts (id),
    kind       text        NOT NULL CHECK (kind IN ('fired', 'repeat', 'resolved')),
    at         timestamptz NOT NULL,
    text       text        NOT NULL,
    payload    jsonb       NOT NULL,
    capped     boolean     NOT NULL DEFAULT false,  -- over the daily cap: recorded, not told
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,  -- handed to the notify queue (delivery is at least once from there)
    UNIQUE (alert_id, kind, at)
);
CREATE INDEX alert_notifications_unsent ON alert_notifications (created_at) WHERE sent_at IS NULL AND NOT capped;

CREATE TABLE webhooks (
    id         bigserial   PRIMARY KEY,
    url        text        NOT NULL,
    secret     text        NOT NULL,  -- the HMAC key; shown once when registered
    device_id  integer,               -- NULL: every device
    created_at timestamptz NOT NULL DEFAULT now()
);
