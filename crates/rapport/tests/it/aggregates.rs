//! Property: any sequence of visit inserts, updates and deletes leaves
//! every patient's stored aggregates equal to a recomputation from the
//! visits the sequence left behind.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rapport_app::audit::Actor;
use rapport_app::{App, patients, visits};
use rapport_domain::PatientAggregates;
use rapport_domain::patient::{PatientInput, VisitInput};

use crate::both_engines;
use crate::harness::{Engine, TestDb};

#[derive(Debug, Clone)]
enum Op {
    Insert {
        patient: usize,
        day: u64,
        amount: i64,
    },
    Update {
        which: usize,
        patient: usize,
        day: u64,
        amount: i64,
    },
    Delete {
        which: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..3usize, 0..500u64, 0..200_000i64).prop_map(|(patient, day, amount)| Op::Insert { patient, day, amount }),
        2 => (any::<usize>(), 0..3usize, 0..500u64, 0..200_000i64)
            .prop_map(|(which, patient, day, amount)| Op::Update { which, patient, day, amount }),
        2 => any::<usize>().prop_map(|which| Op::Delete { which }),
    ]
}

fn input(visit_id: &str, day: u64, amount: i64) -> VisitInput {
    let base = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    VisitInput {
        visit_id: visit_id.to_string(),
        visit_date: (base + Days::new(day)).to_string(),
        amount: format!("{}.{:02}", amount / 100, amount % 100),
        ..Default::default()
    }
}

async fn run_case(app: &App, case: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut keys = Vec::new();
    for p in 0..3 {
        let pid = format!("C{case}P{p}");
        let created = patients::create(
            app,
            &rapport_app::audit::Actor::cli(),
            &pid,
            &PatientInput::default(),
        )
        .await
        .unwrap();
        keys.push((pid, created.id));
    }
    // Model: visit platform id -> (patient index, day, amount, visit_id).
    let mut live: BTreeMap<i64, (usize, u64, i64, String)> = BTreeMap::new();
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Insert {
                patient,
                day,
                amount,
            } => {
                let vid = format!("C{case}V{n}");
                let v = visits::create(
                    app,
                    &Actor::cli(),
                    &keys[patient].0,
                    &input(&vid, day, amount),
                )
                .await
                .unwrap();
                live.insert(v.id, (patient, day, amount, vid));
            }
            Op::Update {
                which,
                patient,
                day,
                amount,
            } if !live.is_empty() => {
                let id = *live.keys().nth(which % live.len()).unwrap();
                let vid = live[&id].3.clone();
                visits::update(
                    app,
                    &Actor::cli(),
                    id,
                    &keys[patient].0,
                    &input(&vid, day, amount),
                )
                .await
                .unwrap();
                live.insert(id, (patient, day, amount, vid));
            }
            Op::Delete { which } if !live.is_empty() => {
                let id = *live.keys().nth(which % live.len()).unwrap();
                visits::delete(app, &Actor::cli(), id).await.unwrap();
                live.remove(&id);
            }
            _ => {}
        }
    }
    let base = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for (i, (_, key)) in keys.iter().enumerate() {
        let expected = PatientAggregates::from_visits(
            live.values()
                .filter(|v| v.0 == i)
                .map(|v| (base + Days::new(v.1), v.2)),
        );
        let stored = rapport_store::patients::get(&app.db, *key)
            .await
            .unwrap()
            .unwrap()
            .aggregates;
        prop_assert_eq!(stored, expected, "patient {} after {:?}", i, ops);
    }
    Ok(())
}

async fn visit_writes_keep_aggregates_equal_to_recomputation(engine: Engine) {
    let db = TestDb::new(engine).await.unwrap();
    let app = App::new(db.open().await);
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            handle.block_on(run_case(&app, n, &ops))
        })
    });
    result.unwrap();
    let report = rapport_app::check::run(&app).await.unwrap();
    assert_eq!(report[0].violations, 0, "{:?}", report[0].problems);
    assert!(report[0].checked > 0);
}

both_engines!(visit_writes_keep_aggregates_equal_to_recomputation);
