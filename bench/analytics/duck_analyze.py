"""The figures of `rapport analyze` computed by DuckDB from the visits
(analytics.md literally: RANK() scores in integer arithmetic, segment rules,
top 20 %, Gini with exact sums, cohort retention). Prints timings and the
figures as JSON for comparison.

    python3 duck_analyze.py DIR native|parquet AS_OF [RUNS]

DIR holds visits.duckdb and visits.parquet written by export.py."""
import json, sys, time
import duckdb

path, source, as_of = sys.argv[1], sys.argv[2], sys.argv[3]   # source: 'native' or 'parquet'
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
if source == "native":
    con = duckdb.connect(f"{path}/visits.duckdb", read_only=True)
    visits = "visits"
else:
    con = duckdb.connect()
    visits = f"read_parquet('{path}/visits.parquet')"
D = f"DATE '{as_of}'"
V = f"v AS (SELECT patient_key, patient_id, visit_date, amount FROM {visits} WHERE visit_date <= {D})"
S = f"""{V}, s AS (SELECT patient_key, ANY_VALUE(patient_id) AS patient_id, COUNT(*) AS visits,
        CAST(SUM(amount) AS BIGINT) AS monetary, {D} - MAX(visit_date) AS recency_days FROM v GROUP BY patient_key)"""

def run():
    out = {}
    n, total = con.execute(f"WITH {S} SELECT COUNT(*), CAST(SUM(monetary) AS BIGINT) FROM s").fetchone()
    segs = con.execute(f"""WITH {S}, n AS (SELECT COUNT(*) AS n FROM s),
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
    top = con.execute(f"""WITH {S}, t AS (SELECT monetary, ROW_NUMBER() OVER (ORDER BY monetary DESC, patient_id ASC) AS rn FROM s)
      SELECT CAST(SUM(monetary) AS HUGEINT) FROM t WHERE rn <= {k}""").fetchone()[0]
    gnum = con.execute(f"""WITH {S}, t AS (SELECT monetary, ROW_NUMBER() OVER (ORDER BY monetary ASC) AS i FROM s)
      SELECT CAST(SUM((2 * i - {n} - 1) * CAST(monetary AS HUGEINT)) AS HUGEINT) FROM t""").fetchone()[0]
    cells = con.execute(f"""WITH {V}, f AS (SELECT patient_key, MIN(visit_date) AS first_visit FROM v GROUP BY patient_key),
      m AS (SELECT DISTINCT v.patient_key, strftime(f.first_visit, '%Y-%m') AS cohort,
              (year(v.visit_date) * 12 + month(v.visit_date)) - (year(f.first_visit) * 12 + month(f.first_visit)) AS k
            FROM v JOIN f USING (patient_key))
      SELECT cohort, k, COUNT(*) FROM m WHERE k < 12 GROUP BY cohort, k ORDER BY cohort, k""").fetchall()
    out["active_patients"] = n
    out["revenue"] = f"{total // 100}.{total % 100:02d}"
    out["segments"] = dict(segs)
    out["top20_share"] = top / total
    out["gini"] = gnum / (n * total)
    out["cohort_cells"] = len(cells)
    return out

times = []
for _ in range(runs):
    t = time.perf_counter()
    res = run()
    times.append(time.perf_counter() - t)
print(json.dumps({"source": source, "times_s": times, "result": res}))
