-- Earning rules and campaigns, the earns that visits gave, rewards and
-- vouchers, member-gets-member referrals, and the programme settings they
-- need. Points still move only through the ledger of 0006; these tables
-- say why, and are written in the same transaction as the entry.

-- Points given to the referrer after the referred patient's first paid
-- visit, and what one point is worth (minor units) for the liability.
ALTER TABLE loyalty_programs ADD COLUMN referral_reward_points INTEGER NOT NULL DEFAULT 200
    CHECK (referral_reward_points >= 0);
ALTER TABLE loyalty_programs ADD COLUMN point_value_minor INTEGER NOT NULL DEFAULT 1
    CHECK (point_value_minor >= 0);

-- Base rules: points per whole currency unit; NULL matches anything.
CREATE TABLE loyalty_earn_rules (
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    category TEXT,
    member_type TEXT,
    tier TEXT,
    priority INTEGER NOT NULL,
    points_per_unit INTEGER NOT NULL CHECK (points_per_unit >= 0),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (hospital_id, code)
);

CREATE TABLE loyalty_campaigns (
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    priority INTEGER NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    department TEXT,
    category TEXT,
    member_type TEXT,
    tier TEXT,
    effect TEXT NOT NULL CHECK (effect IN ('multiply_percent', 'add_per_line')),
    effect_value INTEGER NOT NULL,
    exclusive INTEGER NOT NULL,
    cap_per_member INTEGER,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (hospital_id, code),
    UNIQUE (hospital_id, priority)
);

-- The earn entry a visit gave a member, with the explanation of every
-- point, until it is reversed (visit deleted, moved, or its amount changed).
CREATE TABLE loyalty_visit_earns (
    member_id INTEGER NOT NULL REFERENCES loyalty_members(id),
    seq INTEGER NOT NULL,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    -- visits.id; no foreign key: the visit may be deleted, the earn stays.
    visit_key INTEGER NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    -- What the earn was computed from (date, department, kind, amount).
    basis TEXT NOT NULL,
    explanation TEXT NOT NULL,
    reversed_seq INTEGER,
    reversed_at TEXT,
    PRIMARY KEY (member_id, seq)
);
CREATE INDEX loyalty_visit_earns_visit ON loyalty_visit_earns (visit_key);

-- Extra points each campaign gave in an earn: a campaign's per-member cap
-- counts the rows of earns that were not reversed.
CREATE TABLE loyalty_earn_campaigns (
    member_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    campaign TEXT NOT NULL,
    points INTEGER NOT NULL CHECK (points >= 0),
    PRIMARY KEY (member_id, seq, campaign),
    FOREIGN KEY (member_id, seq) REFERENCES loyalty_visit_earns (member_id, seq)
);

CREATE TABLE loyalty_rewards (
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('check_up', 'discount_voucher', 'gift')),
    cost_points INTEGER NOT NULL CHECK (cost_points > 0),
    -- For a discount voucher: its value in minor units.
    value_minor INTEGER CHECK (value_minor >= 0),
    -- NULL: unlimited.
    stock INTEGER CHECK (stock >= 0),
    active_from TEXT NOT NULL,
    active_until TEXT,
    voucher_valid_days INTEGER NOT NULL CHECK (voucher_valid_days > 0),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (hospital_id, code)
);

CREATE TABLE loyalty_vouchers (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    member_id INTEGER NOT NULL REFERENCES loyalty_members(id),
    reward_code TEXT NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    -- The redeem entry that paid for it, and the adjustment that refunded it.
    redeem_seq INTEGER NOT NULL,
    refund_seq INTEGER,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('issued', 'used', 'cancelled')),
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    cancelled_at TEXT,
    UNIQUE (hospital_id, code),
    UNIQUE (member_id, idempotency_key),
    UNIQUE (member_id, redeem_seq)
);

CREATE TABLE loyalty_referral_codes (
    member_id INTEGER PRIMARY KEY REFERENCES loyalty_members(id),
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    code TEXT NOT NULL,
    -- Invitations the member handed out (counted at the desk).
    invited INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (hospital_id, code)
);

CREATE TABLE loyalty_referrals (
    id INTEGER PRIMARY KEY,
    hospital_id INTEGER NOT NULL REFERENCES hospitals(id),
    referrer_member_id INTEGER NOT NULL REFERENCES loyalty_members(id),
    code TEXT NOT NULL,
    referred_patient_key INTEGER NOT NULL REFERENCES patients(id),
    referred_member_id INTEGER REFERENCES loyalty_members(id),
    status TEXT NOT NULL CHECK (status IN ('registered', 'first_visit', 'rewarded')),
    registered_at TEXT NOT NULL,
    first_visit_key INTEGER,
    first_visit_at TEXT,
    rewarded_seq INTEGER,
    rewarded_points INTEGER,
    rewarded_at TEXT,
    UNIQUE (hospital_id, referred_patient_key)
);
CREATE INDEX loyalty_referrals_referrer ON loyalty_referrals (referrer_member_id);
