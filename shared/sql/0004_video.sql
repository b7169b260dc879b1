-- Video consultations: specialist requests, rooms and specialist presence.

-- A nurse or GP asking a hospital specialty for advice about one patient.
CREATE TABLE consults (
    consult_id     uuid PRIMARY KEY,
    patient_id     text NOT NULL,
    specialty      text NOT NULL,
    urgency        text NOT NULL CHECK (urgency IN ('acute', 'today', 'routine')),
    reason         text NOT NULL,
    alert_id       text,
    status         text NOT NULL CHECK (status IN ('waiting', 'accepted', 'cancelled')),
    requested_by   text NOT NULL,
    requester_role text NOT NULL,
    requester_org  text NOT NULL,
    requested_at   timestamptz NOT NULL,
    -- The escalation deadline of a waiting acute request; cleared when it fires, when the
    -- request is accepted or cancelled, so a scheduler picks each deadline up exactly once.
    escalate_at    timestamptz,
    escalated_at   timestamptz,
    accepted_by    text,
    accepted_org   text,
    accepted_at    timestamptz,
    room_id        text,
    cancelled_by   text,
    cancelled_at   timestamptz
);
CREATE INDEX consults_queue ON consults (specialty, status, requested_at);
CREATE INDEX consults_requester ON consults (requester_org, requested_at);
CREATE INDEX consults_escalation ON consults (escalate_at) WHERE escalate_at IS NOT NULL;

-- Video rooms. Membership lives in the signaling process; what must survive a restart is
-- whether a room is still open, so that tokens of closed rooms stay refused.
CREATE TABLE video_rooms (
    room_id     text PRIMARY KEY,
    consult_id  uuid UNIQUE REFERENCES consults,
    org_id      text NOT NULL,
    patient_id  text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    -- When an empty room closes by itself; NULL while anyone is connected.
    expires_at  timestamptz,
    closed_at   timestamptz
);
CREATE INDEX video_rooms_expiry ON video_rooms (expires_at) WHERE closed_at IS NULL;

-- Whether a specialist can take a consultation now, per specialty of their department.
CREATE TABLE specialist_presence (
    org_id      text NOT NULL,
    subject     text NOT NULL,
    specialties text[] NOT NULL,
    status      text NOT NULL CHECK (status IN ('available', 'busy', 'offline')),
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, subject)
);
CREATE INDEX specialist_presence_specialties ON specialist_presence USING gin (specialties);
