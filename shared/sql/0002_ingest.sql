-- Ingest: readings partitioned by month, receipts that can replay what a broker lost, and one
-- active registration per physical device.

-- Readings, partitioned by the month (UTC) they were measured in. A unique key on a partitioned
-- table must include the partition key; (device_id, reading_id, measured_at) keeps the store
-- idempotent because a re-sent reading carries the same measured_at, and reading_receipts
-- already lets each (device_id, reading_id) be published once.
ALTER TABLE readings RENAME TO readings_unpartitioned;
ALTER INDEX readings_pkey RENAME TO readings_unpartitioned_pkey;
ALTER INDEX readings_patient_time RENAME TO readings_unpartitioned_patient_time;

CREATE TABLE readings (
    device_id    text NOT NULL,
    reading_id   text NOT NULL,
    patient_id   text NOT NULL,
    type         text NOT NULL,
    value_num    double precision,
    value_text   text,
    unit         text NOT NULL,
    measured_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    late         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (device_id, reading_id, measured_at)
) PARTITION BY RANGE (measured_at);
CREATE INDEX readings_patient_time ON readings (patient_id, measured_at);

-- Catches what no monthly partition covers yet; ensure_readings_partition moves such rows into
-- the month's partition when it is created.
CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- Creates the partition for the month holding `day` (UTC) unless it exists; true if created.
-- The store consumer calls it for every month it sees before writing, so readings land in
-- their month's partition and the default one stays (nearly) empty.
CREATE FUNCTION ensure_readings_partition(day timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    first_day timestamp := date_trunc('month', day AT TIME ZONE 'UTC');
    lower_bound timestamptz := first_day AT TIME ZONE 'UTC';
    upper_bound timestamptz := (first_day + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'readings_' || to_char(first_day, 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ensure_readings_partition'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS)', name);
    -- Attaching scans the default partition for rows of this month; move them first.
    EXECUTE format(
        'WITH moved AS (DELETE FROM readings_default WHERE measured_at >= %L '
        'AND measured_at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
        lower_bound, upper_bound, name);
    EXECUTE format(
        'ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        name, lower_bound, upper_bound);
    RETURN true;
END
$$;

-- Partitions for every month with readings so far, this month and the next two.
SELECT ensure_readings_partition(month)
  FROM (SELECT DISTINCT date_trunc('month', measured_at, 'UTC') AS month
          FROM readings_unpartitioned
        UNION
        SELECT generate_series(date_trunc('month', now(), 'UTC'),
                               date_trunc('month', now(), 'UTC') + interval '2 months',
                               interval '1 month')) AS months;

INSERT INTO readings SELECT * FROM readings_unpartitioned;
DROP TABLE readings_unpartitioned;

-- Receipts keep the event as published, so that readings an in-memory broker acknowledged and
-- then lost on a restart can be published again (rows written before this migration have none).
ALTER TABLE reading_receipts
    ADD COLUMN patient_id  text,
    ADD COLUMN measured_at timestamptz,
    ADD COLUMN event       bytea;
-- Receipts arrive in time order, so a BRIN index finds recent ones at almost no write cost.
CREATE INDEX reading_receipts_received ON reading_receipts USING brin (received_at);

-- A physical device (kind, model, serial) is registered to at most one patient at a time.
CREATE UNIQUE INDEX devices_one_active_serial ON devices (kind, coalesce(model, ''), serial)
    WHERE serial IS NOT NULL AND revoked_at IS NULL;
