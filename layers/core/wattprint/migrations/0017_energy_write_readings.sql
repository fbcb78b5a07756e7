-- Issue 14: feeding the series costs the sensor ingest path at most 10% of its throughput. A write of readings
-- was four round trips (lock and upsert; the neighbours of each change; the buckets; the change feed), and on a
-- busy machine each round trip waits for the scheduler twice. Now a sensor request's feed is one round trip:
-- energy_write_readings takes the devices' locks, upserts the readings and then, in statements of its own (a
-- VOLATILE function's statements each take a new snapshot under READ COMMITTED, so they see every reading
-- committed before the locks were held), applies a pure append (every sensor request's case) as a difference
-- to the stored buckets and writes them. Any other change (a correction, a late or out-of-order reading) it
-- returns with the neighbours its recompute needs, and wattprint.energy.store re-integrates the readings in
-- Python (wattprint.energy.integrate, the reference the tests check this append against) and writes the buckets
-- with energy_write_buckets, the one statement both use. Times are integer microseconds since the epoch.

-- The median of the last p_intervals intervals between p_times (in any order) that are neither empty nor longer
-- than p_max_gap, truncated to whole microseconds; null when there is none (integrate.typical_spacing).
CREATE FUNCTION energy_spacing(p_times bigint[], p_max_gap bigint, p_intervals integer) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CAST(floor(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)) AS bigint)
    FROM (SELECT d FROM (SELECT t - lag(t) OVER (ORDER BY t) AS d, row_number() OVER (ORDER BY t) AS n
                         FROM unnest(p_times) AS t) AS steps
          WHERE d > 0 AND d <= p_max_gap ORDER BY n DESC LIMIT p_intervals) AS recent
$$;

-- Per device p_rd[i], its buckets of [p_blo[i], p_bhi[i]) (null: to the end) become exactly the new ones given
-- (unchanged ones are not rewritten); the day totals move by the difference; the change feed (0014) gets each
-- device's earliest rewritten bucket. Rows: the buckets written, and whether the device's change-feed row is new.
CREATE FUNCTION energy_write_buckets(p_rd integer[], p_blo bigint[], p_bhi bigint[], p_bd integer[],
                                     p_starts bigint[], p_kwh float8[], p_covered bigint[], p_estimated bigint[],
                                     p_arrival bigint[])
RETURNS TABLE (device_id integer, start_us bigint, kwh float8, covered_us bigint, estimated_us bigint,
               arrival_us bigint, new boolean)
LANGUAGE sql VOLATILE AS $$
WITH ranges AS (
    SELECT d, timestamptz 'epoch' + blo * interval '1 microsecond' AS lo,
           COALESCE(timestamptz 'epoch' + bhi * interval '1 microsecond', 'infinity') AS hi
    FROM unnest(p_rd, p_blo, p_bhi) AS r(d, blo, bhi)
), new AS (
    SELECT d, timestamptz 'epoch' + us * interval '1 microsecond' AS t, kwh, covered_us, estimated_us, arrival_us
    FROM unnest(p_bd, p_starts, p_kwh, p_covered, p_estimated, p_arrival)
         AS n(d, us, kwh, covered_us, estimated_us, arrival_us)
), old AS (
    SELECT b.device_id AS d, b.bucket_start, b.kwh, b.covered_us, b.estimated_us, b.arrival_us
    FROM ranges r JOIN energy_buckets b ON b.device_id = r.d AND b.bucket_start >= r.lo AND b.bucket_start < r.hi
), gone AS (
    DELETE FROM energy_buckets b USING ranges r
    WHERE b.device_id = r.d AND b.bucket_start >= r.lo AND b.bucket_start < r.hi
      AND NOT EXISTS (SELECT FROM new n WHERE n.d = b.device_id AND n.t = b.bucket_start)
), written AS (
    INSERT INTO energy_buckets AS b (device_id, bucket_start, kwh, covered_us, estimated_us, arrival_us)
    SELECT d, t, kwh, covered_us, estimated_us, arrival_us FROM new
    ON CONFLICT (device_id, bucket_start) DO UPDATE
        SET kwh = EXCLUDED.kwh, covered_us = EXCLUDED.covered_us, estimated_us = EXCLUDED.estimated_us,
            arrival_us = EXCLUDED.arrival_us
        WHERE (b.kwh, b.covered_us, b.estimated_us, b.arrival_us)
              IS DISTINCT FROM (EXCLUDED.kwh, EXCLUDED.covered_us, EXCLUDED.estimated_us, EXCLUDED.arrival_us)
    RETURNING b.device_id, b.bucket_start, b.kwh, b.covered_us, b.estimated_us, b.arrival_us
), delta AS (
    SELECT d, date_trunc('day', t, 'UTC') AS day, sum(kwh) AS kwh, sum(covered_us) AS covered_us,
           sum(estimated_us) AS estimated_us, sum(arrival_us) AS arrival_us
    FROM (SELECT d, t, kwh, covered_us, estimated_us, arrival_us FROM new
          UNION ALL SELECT d, bucket_start, -kwh, -covered_us, -estimated_us, -arrival_us FROM old)
         AS c(d, t, kwh, covered_us, estimated_us, arrival_us)
    GROUP BY 1, 2
), days AS (
    INSERT INTO energy_days AS e (device_id, day, kwh, covered_us, estimated_us, arrival_us)
    SELECT d, day, kwh, covered_us, estimated_us, arrival_us FROM delta
    ON CONFLICT (device_id, day) DO UPDATE
        SET kwh = e.kwh + EXCLUDED.kwh, covered_us = e.covered_us + EXCLUDED.covered_us,
            estimated_us = e.estimated_us + EXCLUDED.estimated_us, arrival_us = e.arrival_us + EXCLUDED.arrival_us
), marked AS (
    INSERT INTO energy_changes AS c (device_id, since)
    SELECT w.device_id, min(w.bucket_start) FROM written w GROUP BY w.device_id
    ON CONFLICT ON CONSTRAINT energy_changes_pkey DO UPDATE SET since = least(c.since, EXCLUDED.since)
    RETURNING c.device_id, xmax = 0 AS new
)
SELECT w.device_id, CAST(extract(epoch FROM w.bucket_start) * 1000000 AS bigint), w.kwh, w.covered_us,
       w.estimated_us, w.arrival_us, m.new
FROM written w JOIN marked m ON m.device_id = w.device_id ORDER BY w.device_id, w.bucket_start
$$;

-- Per device whose readings changed (a re-post of the same readings changes nothing, so it returns nothing): the
-- first and last changed instant, how many readings were inserted and replaced, and either `written` (a pure
-- append after the reading before the change, done here: the buckets written, as JSON rows of
-- energy_write_buckets) or, for Python to recompute, the reading before the change (`prev_us`), the first p_tail
-- after it and the device's last p_tail.
CREATE FUNCTION energy_write_readings(p_class integer, p_lock integer[], p_source smallint, p_devices integer[],
                                      p_us bigint[], p_units smallint[], p_values float8[], p_flags smallint[],
                                      p_tail integer, p_max_gap bigint)
RETURNS TABLE (device_id integer, first_us bigint, last_us bigint, inserted bigint, replaced bigint, prev_us bigint,
               after_us bigint[], tail_us bigint[], written json)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    c record;
    prev timestamptz;
    prev_at bigint;
    later bigint;
    sp_before bigint;
    sp_tail bigint;
    v_starts bigint[];
    v_kwh float8[];
    v_covered bigint[];
    v_estimated bigint[];
    v_arrival bigint[];
BEGIN
    -- In device order (p_lock is sorted), so two writers cannot deadlock.
    PERFORM pg_advisory_xact_lock(p_class, d) FROM unnest(p_lock) AS d;
    FOR c IN
        WITH upserted AS (
            INSERT INTO energy_readings AS r (device_id, ts, source, units, value, flags)
            SELECT i.d, timestamptz 'epoch' + i.us * interval '1 microsecond', p_source, i.units, i.value, i.flags
            FROM unnest(p_devices, p_us, p_units, p_values, p_flags) AS i(d, us, units, value, flags)
            ON CONFLICT (device_id, ts, source) DO UPDATE
                SET units = EXCLUDED.units, value = EXCLUDED.value, flags = EXCLUDED.flags
                WHERE (r.units, r.value, r.flags) IS DISTINCT FROM (EXCLUDED.units, EXCLUDED.value, EXCLUDED.flags)
            RETURNING r.device_id AS d, r.ts, xmax = 0 AS ins
        )
        SELECT d, min(ts) AS lo, max(ts) AS hi, count(*) FILTER (WHERE ins) AS n_ins,
               count(*) FILTER (WHERE NOT ins) AS n_rep
        FROM upserted GROUP BY d ORDER BY d
    LOOP
        SELECT max(r.ts) INTO prev FROM energy_readings r WHERE r.device_id = c.d AND r.ts < c.lo;
        prev_at := CAST(extract(epoch FROM prev) * 1000000 AS bigint);
        -- A pure append: readings only inserted, and every reading after prev is one of them.
        IF prev IS NOT NULL AND c.n_rep = 0 THEN
            SELECT count(*) INTO later FROM energy_readings r WHERE r.device_id = c.d AND r.ts > prev;
        END IF;
        IF prev IS NULL OR c.n_rep > 0 OR later <> c.n_ins
           OR EXISTS (SELECT FROM energy_readings r WHERE r.device_id = c.d AND r.ts > c.hi) THEN
            RETURN QUERY SELECT
                c.d, CAST(extract(epoch FROM c.lo) * 1000000 AS bigint),
                CAST(extract(epoch FROM c.hi) * 1000000 AS bigint), c.n_ins, c.n_rep, prev_at,
                ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint) FROM energy_readings r
                      WHERE r.device_id = c.d AND r.ts > c.hi ORDER BY r.ts LIMIT p_tail),
                ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint) FROM energy_readings r
                      WHERE r.device_id = c.d ORDER BY r.ts DESC LIMIT p_tail),
                CAST(NULL AS json);
            CONTINUE;
        END IF;
        -- The buckets from prev's on become: stored − prev's old interval (its end estimated from the spacing
        -- before the change) + the intervals from prev on (the last one's end estimated from the new spacing).
        sp_before := energy_spacing(ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint)
                                          FROM energy_readings r WHERE r.device_id = c.d AND r.ts < c.lo
                                          ORDER BY r.ts DESC LIMIT p_tail), p_max_gap, p_tail - 1);
        sp_tail := energy_spacing(ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint)
                                        FROM energy_readings r WHERE r.device_id = c.d
                                        ORDER BY r.ts DESC LIMIT p_tail), p_max_gap, p_tail - 1);
        -- Units 0 is kW (else kWh: the interval's energy); flag 2 is arrival_time (wattprint.energy.integrate).
        WITH r AS (
            SELECT e.*, lead(e.us) OVER (ORDER BY e.us, e.source) AS next_us,
                   row_number() OVER (ORDER BY e.us DESC, e.source DESC) AS from_end
            FROM (SELECT CAST(extract(epoch FROM ts) * 1000000 AS bigint) AS us, source, value, units, flags
                  FROM energy_readings WHERE energy_readings.device_id = c.d AND ts >= prev) AS e
        ), iv AS (
            SELECT us AS s, next_us AS e, value, units, flags, 0 AS est, 1 AS sign FROM r
            WHERE next_us - us > 0 AND next_us - us <= p_max_gap
            UNION ALL
            SELECT us, us + sp_tail, value, units, flags, 1, 1 FROM r
            WHERE from_end = 1 AND sp_tail > 0 AND sp_tail <= p_max_gap
            UNION ALL
            SELECT us, us + sp_before, value, units, flags, 1, -1
            FROM (SELECT * FROM r WHERE us = prev_at ORDER BY source DESC LIMIT 1) AS old
            WHERE sp_before > 0 AND sp_before <= p_max_gap
        ), parts AS (
            SELECT g.b,
                   iv.sign * ov.o * CASE WHEN iv.units = 0 THEN iv.value ELSE iv.value * 3600000000 / (iv.e - iv.s) END
                       / 3600000000 AS kwh,
                   iv.sign * ov.o AS cov, iv.sign * iv.est * ov.o AS est,
                   CASE WHEN iv.flags & 2 <> 0 THEN iv.sign * ov.o ELSE 0 END AS arr
            FROM iv,
                 generate_series(iv.s - ((iv.s % 900000000) + 900000000) % 900000000, iv.e - 1, 900000000) AS g(b),
                 LATERAL (SELECT least(iv.e, g.b + 900000000) - greatest(iv.s, g.b) AS o) AS ov
            WHERE ov.o > 0
        ), merged AS (
            SELECT b, sum(kwh) AS kwh, CAST(sum(cov) AS bigint) AS cov, CAST(sum(est) AS bigint) AS est,
                   CAST(sum(arr) AS bigint) AS arr
            FROM (SELECT CAST(extract(epoch FROM bucket_start) * 1000000 AS bigint) AS b, kwh,
                         covered_us AS cov, estimated_us AS est, arrival_us AS arr
                  FROM energy_buckets
                  WHERE energy_buckets.device_id = c.d
                    AND bucket_start >= date_bin('15 minutes', prev, timestamptz 'epoch')
                  UNION ALL SELECT b, kwh, cov, est, arr FROM parts) AS x
            GROUP BY b HAVING sum(cov) > 0
        )
        SELECT array_agg(b ORDER BY b), array_agg(kwh ORDER BY b), array_agg(cov ORDER BY b),
               array_agg(est ORDER BY b), array_agg(arr ORDER BY b)
        INTO v_starts, v_kwh, v_covered, v_estimated, v_arrival
        FROM merged;
        v_starts := COALESCE(v_starts, '{}');
        RETURN QUERY SELECT
            c.d, CAST(extract(epoch FROM c.lo) * 1000000 AS bigint), CAST(extract(epoch FROM c.hi) * 1000000 AS bigint),
            c.n_ins, c.n_rep, prev_at, CAST(NULL AS bigint[]), CAST(NULL AS bigint[]),
            COALESCE((SELECT json_agg(json_build_array(w.start_us, w.kwh, w.covered_us, w.estimated_us, w.arrival_us,
                                                       w.new) ORDER BY w.start_us)
                      FROM energy_write_buckets(ARRAY[c.d], ARRAY[prev_at - ((prev_at % 900000000) + 900000000)
                                                                             % 900000000],
                                                CAST(ARRAY[NULL] AS bigint[]),
                                                array_fill(c.d, ARRAY[cardinality(v_starts)]), v_starts,
                                                COALESCE(v_kwh, '{}'), COALESCE(v_covered, '{}'),
                                                COALESCE(v_estimated, '{}'), COALESCE(v_arrival, '{}')) AS w),
                     '[]');
    END LOOP;
END
$$;

-- PostgreSQL lets PUBLIC execute a new function; only the two writers' logins need these (they run with the
-- caller's rights, so they can write nothing the caller could not).
REVOKE EXECUTE ON FUNCTION energy_write_readings(integer, integer[], smallint, integer[], bigint[], smallint[],
                                                 float8[], smallint[], integer, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION energy_write_buckets(integer[], bigint[], bigint[], integer[], bigint[], float8[],
                                                bigint[], bigint[], bigint[]) FROM PUBLIC;
