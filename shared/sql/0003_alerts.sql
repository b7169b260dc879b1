-- Alert lifecycle: assignment, snooze, auto-resolve, the route each alert was given, durable
-- escalation timers and webhook notifications.

ALTER TABLE alerts
    ADD COLUMN assigned_to   text,
    ADD COLUMN assigned_name text,
    ADD COLUMN assigned_at   timestamptz,
    ADD COLUMN snoozed_until timestamptz,
    -- Since when the patient's assessments have stayed below the alerting threshold.
    ADD COLUMN normal_since  timestamptz,
    -- The responder chain and routing warnings of the current escalation plan.
    ADD COLUMN route         jsonb;
CREATE INDEX alerts_normal_since ON alerts (normal_since)
    WHERE status <> 'resolved' AND normal_since IS NOT NULL;

-- What a transition carried beyond the alert's state: the note, the assignee, the snooze, the
-- escalation step and responder, the route.
ALTER TABLE alert_events ADD COLUMN detail jsonb;

-- The history is append-only: a recorded transition is never changed or removed.
CREATE FUNCTION alert_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_events is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER alert_events_append_only BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_events_append_only();

-- Clinicians of an organisation by the subject of their bearer token: whom an alert can be
-- assigned to.
CREATE TABLE clinicians (
    org_id       text NOT NULL,
    clinician_id text NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('nurse', 'gp', 'specialist')),
    active       boolean NOT NULL DEFAULT true,
    PRIMARY KEY (org_id, clinician_id)
);

-- Escalation timers: one row per responder of an alert's plan. A worsening cancels the pending
-- rows and writes a new plan. Rows are fired exactly once under the alert's row lock.
CREATE TABLE escalation_steps (
    id            bigserial PRIMARY KEY,
    alert_id      uuid NOT NULL REFERENCES alerts,
    plan          integer NOT NULL,
    step_index    integer NOT NULL,
    -- a routing step kind, or 'exhausted' when the whole chain went unacknowledged
    kind          text NOT NULL,
    step          jsonb,
    due_at        timestamptz NOT NULL,
    deadline      timestamptz,
    status        text NOT NULL CHECK (status IN ('pending', 'fired', 'cancelled')),
    fired_at      timestamptz,
    fired_by      text,
    seq           bigint,
    cancelled_at  timestamptz,
    cancel_reason text,
    UNIQUE (alert_id, plan, step_index)
);
CREATE INDEX escalation_steps_due ON escalation_steps (due_at) WHERE status = 'pending';
CREATE INDEX escalation_steps_alert ON escalation_steps (alert_id);

-- Webhook subscriptions of practice and municipal systems, one organisation each. The signing
-- secret is stored encrypted (AES-GCM).
CREATE TABLE webhook_subscriptions (
    subscription_id   uuid PRIMARY KEY,
    org_id            text NOT NULL,
    url               text NOT NULL,
    format            text NOT NULL CHECK (format IN ('json', 'fhir')),
    changes           text[],
    secret_ciphertext bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL,
    deleted_at        timestamptz
);
CREATE INDEX webhook_subscriptions_org ON webhook_subscriptions (org_id) WHERE deleted_at IS NULL;

-- One delivery per subscription and alert event, retried with backoff until delivered or dead.
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions,
    seq             bigint NOT NULL REFERENCES alert_events,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

-- Deliveries given up after the last retry, for the operator to look into.
CREATE TABLE webhook_dead_letters (
    delivery_id     bigint PRIMARY KEY REFERENCES webhook_deliveries,
    subscription_id uuid NOT NULL,
    seq             bigint NOT NULL,
    attempts        integer NOT NULL,
    last_status     integer,
    last_error      text,
    at              timestamptz NOT NULL DEFAULT now()
);
