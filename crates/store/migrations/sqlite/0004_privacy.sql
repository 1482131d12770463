-- Audit log: append-only. The triggers refuse any change to a written row.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT,
    action TEXT NOT NULL,
    subject_type TEXT,
    subject_id INTEGER,
    outcome TEXT NOT NULL,
    ip TEXT,
    detail TEXT
);
CREATE INDEX audit_log_subject ON audit_log (hospital_id, subject_type, subject_id, id);
CREATE INDEX audit_log_at ON audit_log (hospital_id, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Consent: one row per decision; the latest row per patient, channel and
-- purpose is in force. Withdrawing is a row with granted = 0.
CREATE TABLE consents (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    patient_key INTEGER NOT NULL REFERENCES patients(id),
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    granted INTEGER NOT NULL,
    source TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    note TEXT
);
CREATE INDEX consents_patient ON consents (patient_key, channel, purpose, id);

-- National ids: encrypted (AEAD) with a key kept outside the database, and
-- a keyed blind index for finding duplicates without decrypting.
ALTER TABLE patients ADD COLUMN national_id_enc TEXT;
ALTER TABLE patients ADD COLUMN national_id_index TEXT;
ALTER TABLE patients ADD COLUMN erased_at TEXT;
CREATE INDEX patients_national_id ON patients (hospital_id, national_id_index);
