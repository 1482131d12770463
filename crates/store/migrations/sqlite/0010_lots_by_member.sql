-- Point lots stored by member: the table becomes clustered on
-- (member_id, seq), so a member's lots sit together and the two per-member
-- indexes (open lots, earned lots) are no longer needed. Every point write
-- then dirties one page of lots instead of four, which is most of what a
-- write costs once the ledger is large (docs/benchmarks.md).
CREATE TABLE loyalty_lots_by_member (
    member_id INTEGER NOT NULL REFERENCES loyalty_members(id),
    -- The seq of the entry that created the lot.
    seq INTEGER NOT NULL,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    earned INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    original INTEGER NOT NULL CHECK (original > 0),
    remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= original),
    reversed_at TEXT,
    PRIMARY KEY (member_id, seq)
) WITHOUT ROWID;
INSERT INTO loyalty_lots_by_member (member_id, seq, hospital_id, earned, created_at, expires_at, original,
    remaining, reversed_at)
SELECT member_id, seq, hospital_id, earned, created_at, expires_at, original, remaining, reversed_at
FROM loyalty_lots;
DROP TABLE loyalty_lots;
ALTER TABLE loyalty_lots_by_member RENAME TO loyalty_lots;
CREATE INDEX loyalty_lots_due ON loyalty_lots (hospital_id, expires_at) WHERE remaining > 0;
