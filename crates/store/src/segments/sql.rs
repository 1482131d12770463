//! Compiling a segment's rule tree to one parameterised SQL condition.
//!
//! Field names come from the closed [`Field`] enum and map to column
//! expressions written here; every value is a bound parameter (`$N`).
//! Only integers this module computes itself (a prefix's length) are
//! written into the text. Placeholders appear in the text in increasing
//! order, which the synchronous SQLite path (positional binding) needs.
//!
//! The FROM clause reads only the tables the rule needs, and starts from
//! the narrowest one the rule cannot match without: a rule that needs
//! stored scores (`rfm_segment in (…)`) scans `patient_scores` and looks
//! the other rows up by key, instead of scanning every patient.

use chrono::{Datelike, NaiveDate};
use rapport_domain::segment::{
    Condition, Field, Op, Rule, Scalar, Source, age_ranges, born_on_or_before,
};

use crate::Engine;
use crate::bulk::Value;

/// The tables a query reads, and the one it scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tables {
    pub patients: bool,
    pub aggregates: bool,
    pub scores: bool,
    /// The scanned table: `p`, `a` or `s`.
    pub drive: char,
    pub aggregates_required: bool,
    pub scores_required: bool,
}

impl Tables {
    /// What `rule` needs, plus `patients`, `aggregates`, `scores` when
    /// the caller reads their columns too.
    pub fn for_rule(rule: &Rule, patients: bool, aggregates: bool, scores: bool) -> Tables {
        let aggregates_required = rule.requires(Source::Aggregates);
        let scores_required = rule.requires(Source::Scores);
        let drive = if scores_required {
            's'
        } else if aggregates_required {
            'a'
        } else {
            'p'
        };
        Tables {
            patients: patients || rule.uses(Source::Patient) || drive == 'p',
            aggregates: aggregates || rule.uses(Source::Aggregates) || drive == 'a',
            scores: scores || rule.uses(Source::Scores) || drive == 's',
            drive,
            aggregates_required,
            scores_required,
        }
    }

    /// The key column of the scanned table (the patient's platform id).
    pub fn key(&self) -> &'static str {
        match self.drive {
            's' => "s.patient_key",
            'a' => "a.patient_key",
            _ => "p.id",
        }
    }

    /// The table scanned, for its key bounds.
    pub fn drive_table(&self) -> (&'static str, &'static str) {
        match self.drive {
            's' => ("patient_scores", "patient_key"),
            'a' => ("patient_aggregates", "patient_key"),
            _ => ("patients", "id"),
        }
    }

    /// The FROM clause. `range` (`"BETWEEN $2 AND $3"`, `"> $2 AND {} <= $3"`
    /// with `{}` for the column) repeats the scanned key's bounds on every
    /// joined table: PostgreSQL does not carry inequalities across a join,
    /// and would otherwise merge-join from the first key of the other
    /// table.
    pub fn tables_sql(&self, range: &str) -> String {
        let key = self.key();
        let bound = |col: &str| format!(" AND {col} {}", range.replace("{}", col));
        let mut out = match self.drive {
            's' => "patient_scores s".to_string(),
            'a' => "patient_aggregates a".to_string(),
            _ => "patients p".to_string(),
        };
        if self.drive != 'p' && self.patients {
            out.push_str(&format!(
                " JOIN patients p ON p.id = {key}{}",
                bound("p.id")
            ));
        }
        if self.drive != 'a' && self.aggregates {
            let join = if self.aggregates_required {
                "JOIN"
            } else {
                "LEFT JOIN"
            };
            out.push_str(&format!(
                " {join} patient_aggregates a ON a.patient_key = {key}{}",
                bound("a.patient_key")
            ));
        }
        if self.drive != 's' && self.scores {
            let join = if self.scores_required {
                "JOIN"
            } else {
                "LEFT JOIN"
            };
            out.push_str(&format!(
                " {join} patient_scores s ON s.patient_key = {key}"
            ));
        }
        out
    }

    /// `hospital_id = $1` on the scanned table. On SQLite the unary `+`
    /// keeps the planner off the `(hospital_id, patient_id)` index, which
    /// would visit every row through it.
    pub fn hospital(&self, engine: Engine) -> String {
        let plus = if engine == Engine::Sqlite { "+" } else { "" };
        format!("{plus}{}.hospital_id = $1", self.drive)
    }
}

/// A compiled condition: SQL text and its parameters, numbered from
/// `first + 1`.
pub(crate) struct Compiled {
    pub sql: String,
    pub params: Vec<Value>,
}

pub(crate) fn compile(
    rule: &Rule,
    engine: Engine,
    today: NaiveDate,
    key: &str,
    first: usize,
) -> Compiled {
    let mut c = Compiler {
        engine,
        today,
        key: key.to_string(),
        first,
        params: Vec::new(),
    };
    let sql = c.rule(rule);
    Compiled {
        sql,
        params: c.params,
    }
}

struct Compiler {
    engine: Engine,
    today: NaiveDate,
    key: String,
    first: usize,
    params: Vec<Value>,
}

/// Relative cost of evaluating a rule per row: column comparisons first,
/// then the JSON tag lookups, then consent subqueries.
fn cost(r: &Rule) -> u8 {
    match r {
        Rule::All(v) | Rule::Any(v) => v.iter().map(cost).max().unwrap_or(0),
        Rule::Cond(c) => match c.field {
            Field::Consent(..) => 3,
            Field::Tags => 2,
            Field::Age => 1,
            _ => 0,
        },
    }
}

impl Compiler {
    fn param(&mut self, v: Value) -> String {
        self.params.push(v);
        format!("${}", self.first + self.params.len())
    }

    fn rule(&mut self, r: &Rule) -> String {
        match r {
            Rule::All(v) | Rule::Any(v) => {
                let and = matches!(r, Rule::All(_));
                if v.is_empty() {
                    return if and { "1 = 1" } else { "1 = 0" }.into();
                }
                let mut order: Vec<&Rule> = v.iter().collect();
                order.sort_by_key(|r| cost(r));
                let parts: Vec<String> = order.into_iter().map(|r| self.rule(r)).collect();
                format!("({})", parts.join(if and { " AND " } else { " OR " }))
            }
            Rule::Cond(c) => self.condition(c),
        }
    }

    fn value(&self, s: &Scalar) -> Value {
        match s {
            Scalar::Int(i) | Scalar::Money(i) => Value::Int(Some(*i)),
            Scalar::Float(f) => Value::Float(Some(*f)),
            Scalar::Text(t) => Value::Text(Some(t.clone())),
            Scalar::Date(d) => Value::Date(Some(d.resolve(self.today))),
            Scalar::Bool(b) => Value::Int(Some(i64::from(*b))),
        }
    }

    fn condition(&mut self, c: &Condition) -> String {
        match c.field {
            Field::Age => self.age(c),
            Field::Tags => self.tags(c),
            Field::RecencyDays => self.recency(c),
            Field::HasHousehold => {
                let has = "(p.household IS NOT NULL AND p.household <> '')";
                let hasnt = "(p.household IS NULL OR p.household = '')";
                let want = matches!(c.values.first(), Some(Scalar::Bool(true))) == (c.op == Op::Eq);
                if want { has } else { hasnt }.into()
            }
            Field::Consent(channel, purpose) => {
                let ch = self.param(Value::from(channel.as_str()));
                let pu = self.param(Value::from(purpose.as_str()));
                let in_force = format!(
                    "(SELECT c.granted FROM consents c WHERE c.patient_key = {} AND c.channel = {ch} \
                     AND c.purpose = {pu} ORDER BY c.id DESC LIMIT 1)",
                    self.key
                );
                let want = matches!(c.values.first(), Some(Scalar::Bool(true))) == (c.op == Op::Eq);
                if want {
                    format!("COALESCE({in_force}, 0) = 1")
                } else {
                    format!("COALESCE({in_force}, 0) = 0")
                }
            }
            f => {
                let col = match f {
                    Field::Sex => "p.sex",
                    Field::BirthYear => "p.birth_year",
                    Field::District => "p.district",
                    Field::SourceChannel => "p.source_channel",
                    Field::RegisteredOn => "p.registered_on",
                    Field::Visits => "COALESCE(a.visits, 0)",
                    Field::VisitDays => "COALESCE(a.visit_days, 0)",
                    Field::Monetary => "COALESCE(a.monetary, 0)",
                    Field::FirstVisit => "a.first_visit",
                    Field::LastVisit => "a.last_visit",
                    Field::RScore => "s.r_score",
                    Field::FScore => "s.f_score",
                    Field::MScore => "s.m_score",
                    Field::RfmSegment => "s.segment",
                    Field::PAlive => "s.p_alive",
                    Field::ExpectedVisits90d => "s.expected_visits_90d",
                    Field::Clv12m => "s.clv_12m",
                    Field::ChurnRisk => "s.churn_risk",
                    // Handled above.
                    Field::Age
                    | Field::Tags
                    | Field::RecencyDays
                    | Field::HasHousehold
                    | Field::Consent(..) => "NULL",
                };
                let values: Vec<Value> = c.values.iter().map(|s| self.value(s)).collect();
                self.compare(col, c.op, values)
            }
        }
    }

    /// `col OP values` for the plain operators.
    fn compare(&mut self, col: &str, op: Op, values: Vec<Value>) -> String {
        let mut vals = values.into_iter();
        let mut next = |s: &mut Self| {
            let v = vals.next().unwrap_or(Value::Int(None));
            s.param(v)
        };
        let bin = |s: &mut Self, o: &str, next: &mut dyn FnMut(&mut Self) -> String| {
            let p = next(s);
            format!("{col} {o} {p}")
        };
        match op {
            Op::Eq => bin(self, "=", &mut next),
            Op::Ne => bin(self, "<>", &mut next),
            Op::Lt => bin(self, "<", &mut next),
            Op::Le => bin(self, "<=", &mut next),
            Op::Gt => bin(self, ">", &mut next),
            Op::Ge => bin(self, ">=", &mut next),
            Op::Between => {
                let a = next(self);
                let b = next(self);
                format!("{col} BETWEEN {a} AND {b}")
            }
            Op::In | Op::NotIn => {
                let mut ps = Vec::new();
                for v in vals.by_ref() {
                    ps.push(self.param(v));
                }
                let not = if op == Op::NotIn { "NOT " } else { "" };
                format!("{col} {not}IN ({})", ps.join(", "))
            }
            Op::IsNull => format!("{col} IS NULL"),
            Op::IsNotNull => format!("{col} IS NOT NULL"),
            Op::Prefix => {
                let v = vals.next().unwrap_or(Value::Text(None));
                let n = match &v {
                    Value::Text(Some(t)) => t.chars().count(),
                    _ => 0,
                };
                let p = self.param(v);
                format!("substr({col}, 1, {n}) = {p}")
            }
            Op::Contains | Op::ContainsAny | Op::ContainsAll => "1 = 0".into(),
        }
    }

    /// Recency in days is a comparison of the last visit with today minus
    /// the days, with the direction reversed.
    fn recency(&mut self, c: &Condition) -> String {
        let day = |s: &Scalar| match s {
            Scalar::Int(n) => Value::Date(Some(
                self.today - chrono::Duration::days((*n).clamp(-1_000_000, 1_000_000)),
            )),
            _ => Value::Date(None),
        };
        let vals: Vec<Value> = c.values.iter().map(day).collect();
        let op = match c.op {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            o => o,
        };
        let vals = if op == Op::Between {
            vals.into_iter().rev().collect()
        } else {
            vals
        };
        self.compare("a.last_visit", op, vals)
    }

    fn age(&mut self, c: &Condition) -> String {
        match c.op {
            Op::IsNull => return "(p.birth_date IS NULL AND p.birth_year IS NULL)".into(),
            Op::IsNotNull => {
                return "(p.birth_date IS NOT NULL OR p.birth_year IS NOT NULL)".into();
            }
            _ => {}
        }
        let ranges = age_ranges(c);
        if ranges.is_empty() {
            return "1 = 0".into();
        }
        let year = i64::from(self.today.year());
        let mut alts = Vec::new();
        for (lo, hi) in ranges {
            let mut by_date = vec!["p.birth_date IS NOT NULL".to_string()];
            let mut by_year = vec![
                "p.birth_date IS NULL".to_string(),
                "p.birth_year IS NOT NULL".to_string(),
            ];
            // Age 0 includes birth dates after today (ages never go below 0).
            if lo > 0 {
                let d = self.param(Value::Date(Some(born_on_or_before(self.today, lo))));
                by_date.push(format!("p.birth_date <= {d}"));
            }
            if let Some(h) = hi {
                let d = self.param(Value::Date(Some(born_on_or_before(self.today, h + 1))));
                by_date.push(format!("p.birth_date > {d}"));
            }
            if lo > 0 {
                let y = self.param(Value::Int(Some(year - lo)));
                by_year.push(format!("p.birth_year <= {y}"));
            }
            if let Some(h) = hi {
                let y = self.param(Value::Int(Some(year - h)));
                by_year.push(format!("p.birth_year >= {y}"));
            }
            alts.push(format!(
                "(({}) OR ({}))",
                by_date.join(" AND "),
                by_year.join(" AND ")
            ));
        }
        format!("({})", alts.join(" OR "))
    }

    fn tags(&mut self, c: &Condition) -> String {
        let mut wanted: Vec<String> = c
            .values
            .iter()
            .filter_map(|s| match s {
                Scalar::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        match (c.op, self.engine) {
            (Op::IsNull, Engine::Sqlite) => "json_array_length(p.tags) = 0".into(),
            (Op::IsNotNull, Engine::Sqlite) => "json_array_length(p.tags) > 0".into(),
            (Op::IsNull, Engine::Postgres) => "jsonb_array_length(p.tags::jsonb) = 0".into(),
            (Op::IsNotNull, Engine::Postgres) => "jsonb_array_length(p.tags::jsonb) > 0".into(),
            (op, Engine::Sqlite) => {
                let ps: Vec<String> = wanted
                    .into_iter()
                    .map(|t| self.param(Value::Text(Some(t))))
                    .collect();
                let n = ps.len();
                let list = ps.join(", ");
                if op == Op::ContainsAll {
                    format!(
                        "(SELECT COUNT(DISTINCT t.value) FROM json_each(p.tags) t WHERE t.value IN ({list})) = {n}"
                    )
                } else {
                    format!("EXISTS (SELECT 1 FROM json_each(p.tags) t WHERE t.value IN ({list}))")
                }
            }
            (op, Engine::Postgres) => {
                let ps: Vec<String> = wanted
                    .into_iter()
                    .map(|t| self.param(Value::Text(Some(t))))
                    .collect();
                let o = if op == Op::ContainsAll { "?&" } else { "?|" };
                format!("(p.tags::jsonb {o} ARRAY[{}]::text[])", ps.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(j: serde_json::Value) -> Rule {
        Rule::parse(&j, "rules").unwrap()
    }

    #[test]
    fn values_are_bound_and_numbered_in_order() {
        let r = rule(json!({"all": [
            {"field": "consent.sms.marketing", "op": "=", "value": true},
            {"field": "district", "op": "in", "value": ["A'; DROP TABLE patients; --", "B"]},
            {"field": "recency_days", "op": "<=", "value": 90},
            {"field": "tags", "op": "contains", "value": "vip"}
        ]}));
        let today = "2026-06-30".parse().unwrap();
        let c = compile(&r, Engine::Sqlite, today, "p.id", 3);
        assert!(!c.sql.contains("DROP"), "{}", c.sql);
        let nums: Vec<usize> = c
            .sql
            .split('$')
            .skip(1)
            .map(|s| {
                s.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(nums, (4..4 + c.params.len()).collect::<Vec<_>>());
        // Cheap conditions first, the consent subquery last.
        assert!(c.sql.starts_with("(p.district IN"), "{}", c.sql);
        assert!(c.sql.contains("a.last_visit >= $6"), "{}", c.sql);
        assert_eq!(
            c.params[2],
            Value::Date(Some("2026-04-01".parse().unwrap()))
        );
    }

    #[test]
    fn scans_the_narrowest_table_the_rule_needs() {
        let r = rule(json!({"all": [
            {"field": "rfm_segment", "op": "=", "value": "loyal"},
            {"field": "visits", "op": "<", "value": 3}
        ]}));
        let t = Tables::for_rule(&r, false, false, false);
        assert_eq!(t.drive, 's');
        assert_eq!(
            t.tables_sql("BETWEEN $2 AND $3"),
            "patient_scores s LEFT JOIN patient_aggregates a ON a.patient_key = s.patient_key \
             AND a.patient_key BETWEEN $2 AND $3"
        );
        let r = rule(json!({"field": "sex", "op": "=", "value": "F"}));
        assert_eq!(
            Tables::for_rule(&r, false, false, false).tables_sql("> $2 AND {} <= $3"),
            "patients p"
        );
    }
}
