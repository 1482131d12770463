"""Exports the visits of a rapport SQLite database to a DuckDB table and to
Parquet (DuckDB's sqlite extension cannot be downloaded offline), and the
per-patient BG/NBD summary in days as of AS_OF to summary.csv, for
lifetimes and `rapport clv fit --summary`.

    python3 export.py RAPPORT_DB OUT_DIR AS_OF
"""
import sqlite3, sys, time
import duckdb, pandas as pd

db, out, as_of = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.time()
con = sqlite3.connect(db)
df = pd.read_sql_query(
    "SELECT v.patient_key, p.patient_id, v.visit_date, v.amount FROM visits v "
    "JOIN patients p ON p.id = v.patient_key WHERE v.hospital_id = 1", con)
df["visit_date"] = pd.to_datetime(df["visit_date"]).dt.date
duck = duckdb.connect(f"{out}/visits.duckdb")
duck.execute("DROP TABLE IF EXISTS visits")
duck.execute("CREATE TABLE visits AS SELECT patient_key, patient_id, CAST(visit_date AS DATE) AS visit_date, CAST(amount AS BIGINT) AS amount FROM df")
duck.execute(f"COPY visits TO '{out}/visits.parquet' (FORMAT parquet)")
n = duck.execute("SELECT COUNT(*) FROM visits").fetchone()[0]
print(f"exported {n} visits in {time.time() - t:.1f} s")
duck.execute(f"""
COPY (
  WITH d AS (SELECT patient_key, visit_date, SUM(amount) AS amount FROM visits
             WHERE visit_date <= DATE '{as_of}' GROUP BY patient_key, visit_date),
  f AS (SELECT patient_key, MIN(visit_date) AS first_visit FROM d GROUP BY patient_key)
  SELECT d.patient_key AS id,
         COUNT(*) - 1 AS frequency,
         MAX(d.visit_date) - f.first_visit AS recency,
         DATE '{as_of}' - f.first_visit AS T,
         CASE WHEN COUNT(*) > 1
              THEN CAST(SUM(d.amount) FILTER (WHERE d.visit_date > f.first_visit) AS DOUBLE) / (COUNT(*) - 1) / 100.0
              ELSE 0.0 END AS monetary_value
  FROM d JOIN f USING (patient_key) GROUP BY d.patient_key, f.first_visit ORDER BY d.patient_key
) TO '{out}/summary.csv' (HEADER, DELIMITER ',')""")
print("summary written")
