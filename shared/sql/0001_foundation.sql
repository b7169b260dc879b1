-- Care structure: who is responsible for which patient.
CREATE TABLE organisations (
    org_id          text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('acute_team', 'gp_practice', 'out_of_hours', 'hospital_department')),
    name            text NOT NULL,
    phone           text,
    region          text,
    municipalities  text[] NOT NULL DEFAULT '{}',
    opening_hours   jsonb,
    specialties     text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE patients (
    patient_id      text PRIMARY KEY,
    municipality    text,
    gp_practice_id  text,
    region          text,
    spo2_scale      smallint NOT NULL DEFAULT 1 CHECK (spo2_scale IN (1, 2)),
    condition       text
);

-- The organisations responsible for a patient: the acute team serving the patient's
-- municipality, the patient's GP practice, and the out-of-hours service of the region.
CREATE VIEW patient_orgs AS
    SELECT p.patient_id, o.org_id
      FROM patients p JOIN organisations o
        ON o.kind = 'acute_team' AND p.municipality = ANY (o.municipalities)
    UNION
    SELECT p.patient_id, p.gp_practice_id FROM patients p WHERE p.gp_practice_id IS NOT NULL
    UNION
    SELECT p.patient_id, o.org_id
      FROM patients p JOIN organisations o
        ON o.kind = 'out_of_hours' AND o.region = p.region;

-- Devices: the secret is stored encrypted (AES-GCM, key from settings), never in clear.
CREATE TABLE devices (
    device_id         text PRIMARY KEY,
    patient_id        text NOT NULL,
    kind              text NOT NULL,
    model             text,
    serial            text,
    secret_ciphertext bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    rotated_at        timestamptz,
    revoked_at        timestamptz
);
CREATE INDEX devices_patient ON devices (patient_id);

-- What ingest accepted, written in the same transaction that waits for the broker's
-- acknowledgement: a reading id seen here is a duplicate.
CREATE TABLE reading_receipts (
    device_id   text NOT NULL,
    reading_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, reading_id)
);

-- Stored readings, written by the ingest store consumer; idempotent on (device_id, reading_id).
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
    PRIMARY KEY (device_id, reading_id)
);
CREATE INDEX readings_patient_time ON readings (patient_id, measured_at);

-- Alerts: one open alert per dedup key (patient + kind).
CREATE TABLE alerts (
    alert_id        uuid PRIMARY KEY,
    patient_id      text NOT NULL,
    kind            text NOT NULL,
    dedup_key       text NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    severity        text NOT NULL CHECK (severity IN ('low', 'low-medium', 'medium', 'high')),
    news2           jsonb,
    reasons         jsonb NOT NULL DEFAULT '[]',
    assessment      jsonb,
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    resolved_by     text
);
CREATE UNIQUE INDEX alerts_one_open_per_key ON alerts (dedup_key) WHERE status <> 'resolved';
CREATE INDEX alerts_patient ON alerts (patient_id);

-- Append-only history of every alert transition; seq orders the console stream.
CREATE TABLE alert_events (
    seq        bigserial PRIMARY KEY,
    alert_id   uuid NOT NULL REFERENCES alerts,
    change     text NOT NULL,
    actor      text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    body       jsonb NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events (alert_id);

-- Transactional outbox: events written with the state change, published afterwards.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    ce_type    text NOT NULL,
    body       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Short-lived, single-use tickets that open a console WebSocket (hashes only).
CREATE TABLE console_tickets (
    ticket_hash bytea PRIMARY KEY,
    subject     text NOT NULL,
    role        text NOT NULL,
    org_id      text NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Every read of patient data: who, what, when, why.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    role       text NOT NULL,
    org_id     text,
    action     text NOT NULL,
    patient_id text,
    reason     text,
    detail     jsonb
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at);
