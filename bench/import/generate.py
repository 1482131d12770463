#!/usr/bin/env python3
"""Writes a patients.csv / visits.csv pair shaped like a hospital
information system's export, for the import benchmark.

    python3 bench/import/generate.py OUTDIR [PATIENTS] [VISITS]

Defaults: 1,000,000 patients and 10,000,000 visits. Visits are in date
order (as HIS exports are), over 2016-01-01..2025-12-31, spread over the
patients with a heavy tail (a few patients visit very often); amounts are
log-normal with two decimals. Deterministic (seeded).
"""
import datetime
import math
import os
import random
import sys

out = sys.argv[1]
n_patients = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
n_visits = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000_000
os.makedirs(out, exist_ok=True)
rng = random.Random(20261122)

surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗".replace("", " ").split()
given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华".replace("", " ").split()
districts = ["海淀区", "朝阳区", "东城区", "西城区", "丰台区", "通州区", "昌平区", "大兴区"]
channels = ["walk_in", "referral", "wechat", "baidu", "meituan", "partner_clinic"]
departments = ["Cardiology", "Orthopedics", "Dermatology", "Ophthalmology", "ENT", "Pediatrics",
               "Gynecology", "Dental", "Oncology", "Neurology", "Endocrinology", "Urology"]
kinds = ["outpatient"] * 7 + ["exam", "checkup", "inpatient", "telehealth"]

with open(os.path.join(out, "patients.csv"), "w", encoding="utf-8", newline="") as f:
    f.write("patient_id,name,sex,birth_year,phone,district,source_channel,registered_on\n")
    for i in range(n_patients):
        name = rng.choice(surnames) + rng.choice(given) + (rng.choice(given) if rng.random() < 0.6 else "")
        sex = "M" if rng.random() < 0.48 else "F"
        reg = datetime.date(2016, 1, 1) + datetime.timedelta(days=rng.randrange(3650))
        f.write(f"P{i:07d},{name},{sex},{rng.randrange(1940, 2020)},1{rng.randrange(30, 99)}{rng.randrange(10**8):08d},"
                f"{rng.choice(districts)},{rng.choice(channels)},{reg}\n")

start = datetime.date(2016, 1, 1)
days = 3652
per_day = n_visits / days
vid = 0
with open(os.path.join(out, "visits.csv"), "w", encoding="utf-8", newline="") as f:
    f.write("visit_id,patient_id,visit_date,department,doctor_id,kind,amount\n")
    lines = []
    for d in range(days):
        date = (start + datetime.timedelta(days=d)).isoformat()
        count = int(per_day * (d + 1)) - int(per_day * d)
        for _ in range(count):
            # Heavy tail: patient index drawn from a skewed distribution.
            p = int(n_patients * (rng.random() ** 1.7))
            dept = rng.randrange(len(departments))
            cents = int(math.exp(rng.gauss(5.5, 1.1)) * 100)
            lines.append(f"V{vid:08d},P{p:07d},{date},{departments[dept]},D{dept:02d}{rng.randrange(8)},"
                         f"{rng.choice(kinds)},{cents // 100}.{cents % 100:02d}\n")
            vid += 1
        if len(lines) > 100_000:
            f.writelines(lines)
            lines.clear()
    f.writelines(lines)
print(f"{n_patients} patients, {vid} visits in {out}")
