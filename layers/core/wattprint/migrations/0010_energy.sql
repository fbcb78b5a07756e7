-- Energy accounting (issue 14). Readings from both sources of a device's one series; the 15-minute buckets
-- integrated from them (kept up to date by wattprint.energy for exactly the buckets a change reaches); and
-- each UTC day's totals of those buckets, which top consumers and daily series read.

-- source 0: a stored sensor event (kW = its active power / 1000); 1: POST /energy. units 0: kW, 1: kWh.
-- flags 2: timed by its arrival (the sensor's clock repeated). The key makes a re-post a no-op and a
-- correction (same device, source and instant) a replacement; its order, ts before source, is the series'.
CREATE TABLE energy_readings (
    device_id integer     NOT NULL,
    ts        timestamptz NOT NULL,
    source    smallint    NOT NULL CHECK (source IN (0, 1)),
    units     smallint    NOT NULL CHECK (units IN (0, 1)),
    value     float8      NOT NULL CHECK (value > '-Infinity' AND value < 'Infinity'),
    flags     smallint    NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, ts, source)
);

-- The latest sensor clock seen per device: a sensor event whose UTC Time is not later is timed by arrival.
CREATE TABLE energy_sensor_clocks (
    device_id   integer     PRIMARY KEY,
    sensor_time timestamptz NOT NULL
);

-- covered_us: microseconds of the 15 minutes that some interval covers (coverage = covered_us / 900e6); of them,
-- estimated_us lie in the device's last interval (whose end is estimated) and arrival_us in intervals of
-- arrival-timed sensor readings. All three add up like the energy, so a change can be applied as a difference
-- (and the day totals follow by one).
CREATE TABLE energy_buckets (
    device_id    integer     NOT NULL,
    bucket_start timestamptz NOT NULL,
    kwh          float8      NOT NULL,
    covered_us   bigint      NOT NULL CHECK (covered_us BETWEEN 0 AND 900000000),
    estimated_us bigint      NOT NULL DEFAULT 0,
    arrival_us   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, bucket_start)
);
-- The fleet's buckets of a window by an index-only scan.
CREATE INDEX energy_buckets_start ON energy_buckets (bucket_start) INCLUDE (device_id, kwh, covered_us);

CREATE TABLE energy_days (
    device_id    integer     NOT NULL,
    day          timestamptz NOT NULL,
    kwh          float8      NOT NULL,
    covered_us   bigint      NOT NULL,
    estimated_us bigint      NOT NULL DEFAULT 0,
    arrival_us   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, day)
);
CREATE INDEX energy_days_day ON energy_days (day) INCLUDE (device_id, kwh);
