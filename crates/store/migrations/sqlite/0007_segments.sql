-- Saved segments (a named rule set over patients, stored as canonical JSON)
-- and the history of their sizes: one row per count recorded, after every
-- scores refresh and whenever asked.

CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    name TEXT NOT NULL,
    description TEXT,
    rules TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (hospital_id, name)
);

CREATE TABLE segment_counts (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    segment_id INTEGER NOT NULL REFERENCES segments(id),
    counted_at TEXT NOT NULL,
    -- The day the relative dates of the rules were resolved against.
    as_of TEXT NOT NULL,
    patients INTEGER NOT NULL,
    -- refresh (after a scores refresh) or request.
    reason TEXT NOT NULL
);
CREATE INDEX segment_counts_segment ON segment_counts (segment_id, counted_at);

-- The dashboard's visit series read a date range of the visits, from this
-- index alone.
CREATE INDEX visits_date ON visits (hospital_id, visit_date, patient_key, amount);

-- Segments leave erased patients out; this index lists them (few or none)
-- so that the test costs one probe per row.
CREATE INDEX patients_erased ON patients (id) WHERE erased_at IS NOT NULL;
