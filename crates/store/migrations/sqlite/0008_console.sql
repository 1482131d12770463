-- The staff console: each user's chosen language (NULL: follow the
-- browser), and the orders the patient list sorts by (the key last, so a
-- page is read from the index in order on both engines).

ALTER TABLE users ADD COLUMN locale TEXT;
CREATE INDEX patient_aggregates_monetary ON patient_aggregates (hospital_id, monetary, patient_key);
CREATE INDEX patient_aggregates_last_visit ON patient_aggregates (hospital_id, last_visit, patient_key);
CREATE INDEX patient_aggregates_visits ON patient_aggregates (hospital_id, visits, patient_key);
