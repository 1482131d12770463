CREATE TABLE hospitals (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    currency TEXT NOT NULL DEFAULT 'CNY',
    created_at TEXT NOT NULL
);

CREATE TABLE departments (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    name TEXT NOT NULL,
    UNIQUE (hospital_id, name)
);

CREATE TABLE doctors (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    name TEXT,
    department_id INTEGER REFERENCES departments(id),
    UNIQUE (hospital_id, code)
);

CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    patient_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    sex TEXT CHECK (sex IN ('M', 'F', 'U')),
    birth_date TEXT,
    birth_year INTEGER,
    phone TEXT,
    email TEXT,
    district TEXT,
    source_channel TEXT,
    registered_on TEXT,
    preferred_channel TEXT,
    preferred_language TEXT,
    household TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (hospital_id, patient_id)
);
CREATE INDEX patients_name ON patients (hospital_id, name);
CREATE INDEX patients_phone ON patients (hospital_id, phone);
CREATE INDEX patients_household ON patients (hospital_id, household);

CREATE TABLE visits (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    visit_id TEXT NOT NULL,
    patient_key INTEGER NOT NULL REFERENCES patients(id),
    visit_date TEXT NOT NULL,
    department_id INTEGER REFERENCES departments(id),
    doctor_id INTEGER REFERENCES doctors(id),
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (hospital_id, visit_id)
);
CREATE INDEX visits_patient ON visits (patient_key, visit_date);

CREATE TABLE patient_aggregates (
    patient_key INTEGER PRIMARY KEY REFERENCES patients(id),
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    first_visit TEXT NOT NULL,
    last_visit TEXT NOT NULL,
    visits INTEGER NOT NULL,
    visit_days INTEGER NOT NULL,
    monetary INTEGER NOT NULL,
    first_day_monetary INTEGER NOT NULL,
    months_with_visits INTEGER NOT NULL,
    cohort_mask INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

INSERT INTO hospitals (id, code, name, created_at)
VALUES (1, 'main', 'Main hospital', '1970-01-01T00:00:00Z');
