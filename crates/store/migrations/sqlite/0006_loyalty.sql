-- Membership and loyalty. The points ledger is append-only; lots hold the
-- spendable points (each earn or positive adjustment creates one), and the
-- balance row caches what the entries add up to, for reads and for the row
-- lock that serialises every point-moving write of a member.

-- One row per hospital: locked by whoever replaces the tier definitions.
CREATE TABLE loyalty_programs (
    hospital_id INTEGER PRIMARY KEY REFERENCES hospitals(id),
    tiers_version INTEGER NOT NULL,
    -- How long earned points stay spendable.
    points_valid_months INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE loyalty_tiers (
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    rank INTEGER NOT NULL,
    -- Points earned over the rolling 12 months needed to reach the tier.
    threshold_qualifying INTEGER NOT NULL CHECK (threshold_qualifying >= 0),
    -- Discounts in basis points (500 = 5 %) per fee category.
    discount_registration_bp INTEGER NOT NULL CHECK (discount_registration_bp BETWEEN 0 AND 10000),
    discount_examination_bp INTEGER NOT NULL CHECK (discount_examination_bp BETWEEN 0 AND 10000),
    discount_treatment_bp INTEGER NOT NULL CHECK (discount_treatment_bp BETWEEN 0 AND 10000),
    discount_hospitalisation_bp INTEGER NOT NULL CHECK (discount_hospitalisation_bp BETWEEN 0 AND 10000),
    discount_check_up_bp INTEGER NOT NULL CHECK (discount_check_up_bp BETWEEN 0 AND 10000),
    priority_lane INTEGER NOT NULL,
    exclusive_doctor INTEGER NOT NULL,
    home_visits INTEGER NOT NULL,
    free_annual_check_up INTEGER NOT NULL,
    PRIMARY KEY (hospital_id, code),
    UNIQUE (hospital_id, rank)
);

CREATE TABLE loyalty_members (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    patient_key INTEGER NOT NULL REFERENCES patients(id),
    member_type TEXT NOT NULL CHECK (member_type IN ('individual', 'family', 'corporate', 'vip_card')),
    -- Set right after the insert, from the id.
    card_no TEXT,
    joined_on TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    -- A tier code; not a foreign key: a removed tier is reassigned by the
    -- re-evaluation that follows every change of definitions.
    tier TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (hospital_id, patient_key),
    UNIQUE (hospital_id, card_no)
);
CREATE INDEX loyalty_members_tier ON loyalty_members (hospital_id, tier, id);
CREATE INDEX loyalty_members_status ON loyalty_members (hospital_id, status, id);

CREATE TABLE loyalty_balances (
    member_id INTEGER PRIMARY KEY REFERENCES loyalty_members(id),
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    available INTEGER NOT NULL CHECK (available >= 0),
    -- Qualifying points (rolling 12 months) as of qualifying_as_of.
    qualifying INTEGER NOT NULL,
    qualifying_as_of TEXT,
    lifetime INTEGER NOT NULL,
    -- Running totals per kind; available = earned + adjusted_in - the rest.
    earned INTEGER NOT NULL,
    redeemed INTEGER NOT NULL,
    expired INTEGER NOT NULL,
    adjusted_in INTEGER NOT NULL,
    adjusted_out INTEGER NOT NULL,
    reversed INTEGER NOT NULL,
    -- Number of entries (the next entry's seq) and the time of the last.
    entries INTEGER NOT NULL,
    last_at TEXT
);

CREATE TABLE loyalty_entries (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    member_id INTEGER NOT NULL REFERENCES loyalty_members(id),
    -- Position in the member's ledger, from 0.
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('earn', 'redeem', 'expire', 'adjust', 'reverse')),
    points INTEGER NOT NULL CHECK (points >= 0),
    -- The signed change of the available balance, and the balance after.
    delta INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    at TEXT NOT NULL,
    -- The expiry of the lot an earn or positive adjustment creates.
    expires_at TEXT,
    -- The lot an expiry empties, the earn a reversal takes back.
    lot_seq INTEGER,
    allow_partial INTEGER NOT NULL,
    shortfall INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- SHA-256 of the request that used the key.
    request_hash TEXT NOT NULL,
    -- staff, rule or system, and who or which.
    actor_type TEXT NOT NULL CHECK (actor_type IN ('staff', 'rule', 'system')),
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    source_visit INTEGER,
    source_campaign TEXT,
    source_referral TEXT,
    UNIQUE (member_id, seq),
    UNIQUE (member_id, idempotency_key)
);
CREATE INDEX loyalty_entries_at ON loyalty_entries (hospital_id, at);
CREATE INDEX loyalty_entries_visit ON loyalty_entries (source_visit) WHERE source_visit IS NOT NULL;
CREATE TRIGGER loyalty_entries_no_update BEFORE UPDATE ON loyalty_entries
BEGIN SELECT RAISE(ABORT, 'loyalty_entries is append-only'); END;
CREATE TRIGGER loyalty_entries_no_delete BEFORE DELETE ON loyalty_entries
BEGIN SELECT RAISE(ABORT, 'loyalty_entries is append-only'); END;

CREATE TABLE loyalty_lots (
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
);
CREATE INDEX loyalty_lots_open ON loyalty_lots (member_id) WHERE remaining > 0;
CREATE INDEX loyalty_lots_earned ON loyalty_lots (member_id, created_at) WHERE earned;
CREATE INDEX loyalty_lots_due ON loyalty_lots (hospital_id, expires_at) WHERE remaining > 0;

CREATE TABLE loyalty_tier_history (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    member_id INTEGER NOT NULL REFERENCES loyalty_members(id),
    on_date TEXT NOT NULL,
    from_tier TEXT,
    to_tier TEXT NOT NULL,
    change TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX loyalty_tier_history_member ON loyalty_tier_history (member_id, id);

INSERT INTO loyalty_programs (hospital_id, tiers_version, points_valid_months, updated_at)
VALUES (1, 1, 24, '1970-01-01T00:00:00Z');
INSERT INTO loyalty_tiers (hospital_id, code, name, rank, threshold_qualifying,
    discount_registration_bp, discount_examination_bp, discount_treatment_bp,
    discount_hospitalisation_bp, discount_check_up_bp,
    priority_lane, exclusive_doctor, home_visits, free_annual_check_up) VALUES
    (1, 'standard', 'Standard', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    (1, 'silver', 'Silver', 1, 1000, 500, 500, 0, 0, 500, 0, 0, 0, 0),
    (1, 'gold', 'Gold', 2, 5000, 1000, 1000, 500, 0, 1000, 1, 0, 0, 0),
    (1, 'platinum', 'Platinum', 3, 20000, 10000, 1500, 1000, 500, 2000, 1, 1, 1, 1);
