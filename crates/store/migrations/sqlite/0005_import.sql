-- A patient merged into another keeps its row (its hospital id still
-- resolves, to the survivor) but owns nothing any more.
ALTER TABLE patients ADD COLUMN merged_into INTEGER REFERENCES patients(id);

-- Pairs of patients that are probably one person, found on import and on
-- registration; staff merge them or dismiss the pair.
CREATE TABLE patient_duplicates (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    patient_key INTEGER NOT NULL REFERENCES patients(id),
    duplicate_of INTEGER NOT NULL REFERENCES patients(id),
    reason TEXT NOT NULL CHECK (reason IN ('national_id', 'name_phone')),
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'dismissed', 'merged')),
    detected_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    UNIQUE (patient_key, duplicate_of),
    CHECK (duplicate_of < patient_key)
);
CREATE INDEX patient_duplicates_status ON patient_duplicates (hospital_id, status, id);
CREATE INDEX patient_duplicates_of ON patient_duplicates (duplicate_of);

-- Imports: one row per file, with its progress and report.
CREATE TABLE imports (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    kind TEXT NOT NULL CHECK (kind IN ('patients', 'visits', 'fhir')),
    file_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    skip_invalid INTEGER NOT NULL,
    rows_read INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    report TEXT,
    -- The rejected rows as CSV (original columns, row, reason).
    rejects TEXT,
    actor TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX imports_started ON imports (hospital_id, id);
