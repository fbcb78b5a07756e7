-- Issue 14: feeding the series costs the sensor ingest path at most 10% of its throughput. A write of readings
-- was four round trips (lock and upsert; the neighbours of each change; the buckets; the change feed); this
-- function makes the first two one: it takes the devices' locks, upserts the readings and then, in statements
-- of its own (a VOLATILE function's statements each take a new snapshot under READ COMMITTED), reads what the
-- recompute needs, so the neighbours it returns include every reading committed before the locks were held.
-- Both writers (POST /energy, the sensor feed) call it; wattprint.energy.store integrates and writes the buckets
-- (with the change-feed mark) in one more statement.
--
-- Per device whose readings changed (a re-post of the same readings changes nothing, so it returns nothing):
-- the first and last changed instant, how many readings were inserted and replaced, the reading before the first
-- one, the first p_tail after the last one, the device's last p_tail, the last p_tail before the first one and,
-- when nothing follows the last one (an append, the ingest path's usual case), the readings from the one before
-- the change on and the buckets from that one's bucket on (JSON): enough to apply the append as a difference
-- without loading the bucket's earlier readings. Times are integer microseconds since the epoch.
CREATE FUNCTION energy_write_readings(p_class integer, p_lock integer[], p_source smallint, p_devices integer[],
                                      p_us bigint[], p_units smallint[], p_values float8[], p_flags smallint[],
                                      p_tail integer)
RETURNS TABLE (device_id integer, first_us bigint, last_us bigint, inserted bigint, replaced bigint, prev_us bigint,
               after_us bigint[], tail_us bigint[], before_us bigint[], from_prev json, stored json)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    c record;
    lo timestamptz;
    hi timestamptz;
    prev timestamptz;
    appending boolean;
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
        lo := c.lo;
        hi := c.hi;
        SELECT max(r.ts) INTO prev FROM energy_readings r WHERE r.device_id = c.d AND r.ts < lo;
        appending := prev IS NOT NULL
            AND NOT EXISTS (SELECT FROM energy_readings r WHERE r.device_id = c.d AND r.ts > hi);
        RETURN QUERY SELECT
            c.d, CAST(extract(epoch FROM lo) * 1000000 AS bigint), CAST(extract(epoch FROM hi) * 1000000 AS bigint),
            c.n_ins, c.n_rep, CAST(extract(epoch FROM prev) * 1000000 AS bigint),
            ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint) FROM energy_readings r
                  WHERE r.device_id = c.d AND r.ts > hi ORDER BY r.ts LIMIT p_tail),
            ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint) FROM energy_readings r
                  WHERE r.device_id = c.d ORDER BY r.ts DESC LIMIT p_tail),
            ARRAY(SELECT CAST(extract(epoch FROM r.ts) * 1000000 AS bigint) FROM energy_readings r
                  WHERE r.device_id = c.d AND r.ts < lo ORDER BY r.ts DESC LIMIT p_tail),
            CASE WHEN appending THEN
                (SELECT json_agg(json_build_array(CAST(extract(epoch FROM r.ts) * 1000000 AS bigint), r.value,
                                                  r.units, r.flags, r.source) ORDER BY r.ts, r.source)
                 FROM energy_readings r WHERE r.device_id = c.d AND r.ts >= prev) END,
            CASE WHEN appending THEN
                (SELECT json_agg(json_build_array(CAST(extract(epoch FROM b.bucket_start) * 1000000 AS bigint),
                                                  b.kwh, b.covered_us, b.estimated_us, b.arrival_us))
                 FROM energy_buckets b
                 WHERE b.device_id = c.d AND b.bucket_start >= date_bin('15 minutes', prev, timestamptz 'epoch')) END;
    END LOOP;
END
$$;

-- PostgreSQL lets PUBLIC execute a new function; only the two writers' logins need this one (it runs with the
-- caller's rights, so it can write nothing they could not).
REVOKE EXECUTE ON FUNCTION energy_write_readings(integer, integer[], smallint, integer[], bigint[], smallint[],
                                                 float8[], smallint[], integer) FROM PUBLIC;
