-- Per-patient analytics scores (RFM, BG/NBD, Gamma-Gamma), replaced as a
-- whole by every refresh, and the log of background job runs.

CREATE TABLE patient_scores (
    patient_key INTEGER PRIMARY KEY REFERENCES patients(id),
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    r_score INTEGER NOT NULL,
    f_score INTEGER NOT NULL,
    m_score INTEGER NOT NULL,
    segment TEXT NOT NULL,
    -- NULL when the lifetime-value models could not be fitted.
    p_alive REAL,
    expected_visits_90d REAL,
    -- Minor units.
    clv_12m INTEGER,
    -- 1 when the patient is at risk of churning (see rapport_app::analytics).
    churn_risk INTEGER NOT NULL,
    refreshed_at TEXT NOT NULL
);

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    -- running, ok or failed.
    status TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX job_runs_job ON job_runs (hospital_id, job, started_at);
