"""As duck_analyze.py, but the per-patient summary is materialised once
(CREATE TEMP TABLE) and the figures read it: DuckDB's best case.

    python3 duck_analyze_materialised.py DIR AS_OF [RUNS]
"""
import json, sys, time
import duckdb

path, as_of = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
D = f"DATE '{as_of}'"

def run(con):
    con.execute(f"""CREATE OR REPLACE TEMP TABLE s AS SELECT patient_key, ANY_VALUE(patient_id) AS patient_id,
        COUNT(*) AS visits, CAST(SUM(amount) AS BIGINT) AS monetary, {D} - MAX(visit_date) AS recency_days,
        MIN(visit_date) AS first_visit FROM visits WHERE visit_date <= {D} GROUP BY patient_key""")
    n, total = con.execute("SELECT COUNT(*), CAST(SUM(monetary) AS BIGINT) FROM s").fetchone()
    segs = con.execute("""WITH n AS (SELECT COUNT(*) AS n FROM s),
      sc AS (SELECT 1 + (5 * (RANK() OVER (ORDER BY recency_days DESC) - 1)) // n.n AS rs,
                    1 + (5 * (RANK() OVER (ORDER BY visits ASC) - 1)) // n.n AS fs,
                    1 + (5 * (RANK() OVER (ORDER BY monetary ASC) - 1)) // n.n AS ms FROM s CROSS JOIN n),
      g AS (SELECT rs, (fs + ms + 1) // 2 AS fm FROM sc)
      SELECT CASE WHEN rs >= 4 AND fm >= 4 THEN 'champions' WHEN rs >= 3 AND fm >= 4 THEN 'loyal'
        WHEN rs >= 4 AND fm >= 2 THEN 'potential_loyalist' WHEN rs >= 4 AND fm = 1 THEN 'new'
        WHEN rs = 3 AND fm >= 2 THEN 'need_attention' WHEN rs = 3 AND fm = 1 THEN 'about_to_sleep'
        WHEN rs <= 2 AND fm >= 4 THEN 'at_risk' WHEN rs = 2 AND fm <= 3 THEN 'hibernating'
        ELSE 'lost' END AS segment, COUNT(*) FROM g GROUP BY 1""").fetchall()
    k = (n + 4) // 5
    top = con.execute(f"""SELECT CAST(SUM(monetary) AS HUGEINT) FROM
      (SELECT monetary, ROW_NUMBER() OVER (ORDER BY monetary DESC, patient_id ASC) AS rn FROM s) WHERE rn <= {k}""").fetchone()[0]
    gnum = con.execute(f"""SELECT CAST(SUM((2 * i - {n} - 1) * CAST(monetary AS HUGEINT)) AS HUGEINT) FROM
      (SELECT monetary, ROW_NUMBER() OVER (ORDER BY monetary ASC) AS i FROM s)""").fetchone()[0]
    cells = con.execute(f"""WITH m AS (SELECT DISTINCT v.patient_key, strftime(s.first_visit, '%Y-%m') AS cohort,
              (year(v.visit_date) * 12 + month(v.visit_date)) - (year(s.first_visit) * 12 + month(s.first_visit)) AS k
            FROM visits v JOIN s USING (patient_key) WHERE v.visit_date <= {D})
      SELECT cohort, k, COUNT(*) FROM m WHERE k < 12 GROUP BY cohort, k""").fetchall()
    return {"active_patients": n, "revenue": f"{total // 100}.{total % 100:02d}", "segments": dict(segs),
            "top20_share": top / total, "gini": gnum / (n * total), "cohort_cells": len(cells)}

con = duckdb.connect(f"{path}/visits.duckdb", read_only=True)
times = []
for _ in range(runs):
    t = time.perf_counter()
    res = run(con)
    times.append(time.perf_counter() - t)
print(json.dumps({"source": "native, summary materialised once", "times_s": times, "result": res}))
