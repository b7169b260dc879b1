-- Scoring: clinicians' per-patient reference ranges and measurement cadences, and the missing
-- measurement periods already reported.

-- A patient's changes to the defaults of their condition group, as a clinician set them:
-- limits {"spo2": {"red_low": 86, "yellow_low": null}} (null removes a limit) and cadences
-- {"weight": 24, "spo2": null} in hours (null: not expected). One row per patient; every
-- change is also in audit_log with its reason and the document before and after.
CREATE TABLE patient_thresholds (
    patient_id    text PRIMARY KEY REFERENCES patients ON DELETE CASCADE,
    limits        jsonb NOT NULL DEFAULT '{}',
    cadence_hours jsonb NOT NULL DEFAULT '{}',
    reason        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL
);

-- The last missed period reported per patient and reading type, so each overdue period is
-- reported once, whichever scorer instance sees it first.
CREATE TABLE missing_measurement_notices (
    patient_id   text NOT NULL,
    type         text NOT NULL,
    due_at       timestamptz NOT NULL,
    reported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, type)
);
