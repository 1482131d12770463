use super::*;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

fn t(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
}

fn entry(kind: EntryKind, points: i64, day: i64, key: &str) -> Entry {
    Entry {
        kind,
        points,
        at: t(day),
        idempotency_key: key.to_owned(),
        actor: Actor::Staff("tester".to_owned()),
        reason: "test".to_owned(),
        source: "test".to_owned(),
    }
}

fn earn(points: i64, day: i64, expires_day: i64, key: &str) -> Entry {
    entry(
        EntryKind::Earn {
            expires_at: t(expires_day),
        },
        points,
        day,
        key,
    )
}

fn redeem(points: i64, day: i64, key: &str) -> Entry {
    entry(EntryKind::Redeem, points, day, key)
}

#[test]
fn redemption_takes_earliest_expiring_lot_first() {
    let mut l = Ledger::new();
    let a = l.apply(earn(100, 0, 400, "a")).unwrap().id;
    let b = l.apply(earn(50, 1, 200, "b")).unwrap().id;
    l.apply(redeem(70, 2, "r")).unwrap();
    assert_eq!(
        l.lots()[&b].remaining,
        0,
        "b expires first, so is spent first"
    );
    assert_eq!(l.lots()[&a].remaining, 80);
    assert_eq!(l.available(), 80);
    l.check().unwrap();
}

#[test]
fn redeem_beyond_spendable_is_refused_and_changes_nothing() {
    let mut l = Ledger::new();
    l.apply(earn(100, 0, 10, "a")).unwrap();
    let before = l.clone();
    assert_eq!(
        l.apply(redeem(101, 1, "r")),
        Err(LedgerError::Insufficient {
            requested: 101,
            available: 100
        })
    );
    // Past expiry but not yet expired: not spendable.
    assert!(matches!(
        l.apply(redeem(1, 10, "r")),
        Err(LedgerError::Insufficient { available: 0, .. })
    ));
    assert_eq!(l, before);
    // The refused key is free for a valid entry.
    l.apply(redeem(10, 1, "r")).unwrap();
}

#[test]
fn idempotency_same_key_once_different_body_refused() {
    let mut l = Ledger::new();
    let first = l.apply(earn(100, 0, 10, "k")).unwrap();
    let again = l.apply(earn(100, 0, 10, "k")).unwrap();
    assert_eq!(again.id, first.id);
    assert!(again.duplicate);
    assert_eq!(l.available(), 100);
    assert_eq!(
        l.apply(earn(101, 0, 10, "k")),
        Err(LedgerError::KeyReused("k".to_owned()))
    );
}

#[test]
fn expiry_generates_entries_for_remaining_points_and_reruns_are_harmless() {
    let mut l = Ledger::new();
    l.apply(earn(100, 0, 10, "a")).unwrap();
    l.apply(earn(30, 0, 20, "b")).unwrap();
    l.apply(redeem(40, 1, "r")).unwrap();
    assert!(l.due_expiries(t(9)).is_empty());
    let applied = l.expire_due(t(10)).unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(l.entries().last().unwrap().points, 60);
    assert_eq!(l.available(), 30);
    assert!(l.expire_due(t(11)).unwrap().is_empty());
    assert_eq!(l.totals().expired, 60);
    l.check().unwrap();
}

#[test]
fn expire_before_due_is_refused() {
    let mut l = Ledger::new();
    let a = l.apply(earn(100, 0, 10, "a")).unwrap().id;
    let e = entry(EntryKind::Expire { lot: a }, 100, 5, "x");
    assert!(matches!(l.apply(e), Err(LedgerError::NotDue { .. })));
}

#[test]
fn reversal_of_spent_earn_refused_unless_partial() {
    let mut l = Ledger::new();
    let a = l.apply(earn(100, 0, 400, "a")).unwrap().id;
    l.apply(redeem(30, 1, "r")).unwrap();
    let rev = |allow_partial, points| {
        entry(
            EntryKind::Reverse {
                reverses: a,
                allow_partial,
            },
            points,
            2,
            "rev",
        )
    };
    assert_eq!(
        l.apply(rev(false, 70)),
        Err(LedgerError::ReversalShortfall {
            earn: a,
            earned: 100,
            remaining: 70
        })
    );
    assert_eq!(
        l.apply(rev(true, 100)),
        Err(LedgerError::WrongAmount { remaining: 70 })
    );
    let applied = l.apply(rev(true, 70)).unwrap();
    assert_eq!(applied.shortfall, 30);
    assert_eq!(l.available(), 0);
    // The reversed visit no longer qualifies, in full.
    assert_eq!(l.qualifying_12m(t(3)), 0);
    assert_eq!(l.lifetime(), 0);
    let again = entry(
        EntryKind::Reverse {
            reverses: a,
            allow_partial: true,
        },
        0,
        3,
        "rev2",
    );
    assert_eq!(l.apply(again), Err(LedgerError::AlreadyReversed(a)));
    l.check().unwrap();
}

#[test]
fn qualifying_ignores_redemption_expiry_and_adjustments_and_rolls() {
    let mut l = Ledger::new();
    l.apply(earn(100, 0, 30, "a")).unwrap();
    l.apply(earn(50, 100, 500, "b")).unwrap();
    l.apply(redeem(50, 101, "r")).unwrap();
    l.expire_due(t(102)).unwrap();
    let adj = entry(
        EntryKind::Adjust {
            delta: 500,
            expires_at: Some(t(600)),
        },
        500,
        103,
        "adj",
    );
    l.apply(adj).unwrap();
    assert_eq!(l.qualifying_12m(t(103)), 150);
    // Day 0 falls out of the window 12 months later; day 100 has not.
    assert_eq!(l.qualifying_12m(t(365)), 50);
    assert_eq!(l.qualifying_12m(t(364)), 150);
    assert_eq!(l.lifetime(), 150);
    assert_eq!(l.available(), 500);
    l.check().unwrap();
}

#[test]
fn adjust_never_below_zero() {
    let mut l = Ledger::new();
    l.apply(earn(10, 0, 30, "a")).unwrap();
    let down = |d: i64, key: &str| {
        entry(
            EntryKind::Adjust {
                delta: d,
                expires_at: None,
            },
            d.abs(),
            1,
            key,
        )
    };
    assert!(matches!(
        l.apply(down(-11, "x")),
        Err(LedgerError::Insufficient { .. })
    ));
    l.apply(down(-10, "y")).unwrap();
    assert_eq!(l.available(), 0);
    let up_no_expiry = entry(
        EntryKind::Adjust {
            delta: 5,
            expires_at: None,
        },
        5,
        1,
        "z",
    );
    assert!(matches!(
        l.apply(up_no_expiry),
        Err(LedgerError::Invalid(_))
    ));
    l.check().unwrap();
}

#[test]
fn out_of_order_refused() {
    let mut l = Ledger::new();
    l.apply(earn(10, 5, 30, "a")).unwrap();
    assert!(matches!(
        l.apply(earn(10, 4, 30, "b")),
        Err(LedgerError::OutOfOrder { .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Earn(i64, i64),
    Redeem(i64),
    Adjust(i64),
    Expire,
    Reverse(usize, bool),
    Advance(i64),
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..500, 1i64..60).prop_map(|(p, d)| Op::Earn(p, d)),
        (1i64..600).prop_map(Op::Redeem),
        (-300i64..300).prop_map(Op::Adjust),
        Just(Op::Expire),
        (0usize..50, any::<bool>()).prop_map(|(i, b)| Op::Reverse(i, b)),
        (0i64..20).prop_map(Op::Advance),
        (0usize..50).prop_map(Op::Replay),
    ]
}

proptest! {
    #[test]
    fn interleavings_keep_invariants(ops in proptest::collection::vec(op(), 0..80)) {
        let mut l = Ledger::new();
        let mut day = 0i64;
        for (n, o) in ops.iter().enumerate() {
            let key = format!("k{n}");
            let before = l.clone();
            let spendable = l.spendable_at(t(day));
            let result = match o {
                Op::Earn(p, d) => l.apply(earn(*p, day, day + d, &key)).map(|_| ()),
                Op::Redeem(p) => {
                    let r = l.apply(redeem(*p, day, &key));
                    prop_assert_eq!(r.is_ok(), *p <= spendable);
                    r.map(|_| ())
                }
                Op::Adjust(d) => {
                    let exp = (*d > 0).then(|| t(day + 30));
                    l.apply(entry(EntryKind::Adjust { delta: *d, expires_at: exp }, d.abs(), day, &key)).map(|_| ())
                }
                Op::Expire => l.expire_due(t(day)).map(|_| ()),
                Op::Reverse(i, partial) => {
                    let earns: Vec<EntryId> = l.lots().iter().filter(|(_, x)| x.earned).map(|(id, _)| *id).collect();
                    if earns.is_empty() { Ok(()) } else {
                        let id = earns[i % earns.len()];
                        let rem = l.lots()[&id].remaining;
                        l.apply(entry(EntryKind::Reverse { reverses: id, allow_partial: *partial }, rem, day, &key)).map(|_| ())
                    }
                }
                Op::Advance(d) => { day += d; Ok(()) }
                Op::Replay(i) => {
                    if l.entries().is_empty() { Ok(()) } else {
                        let e = l.entries()[i % l.entries().len()].clone();
                        let r = l.apply(e);
                        prop_assert!(r.as_ref().map(|a| a.duplicate).unwrap_or(false));
                        prop_assert_eq!(&l, &before);
                        r.map(|_| ())
                    }
                }
            };
            if matches!(o, Op::Expire) {
                prop_assert!(result.is_ok(), "a scheduled expiry failed: {:?}", result);
            }
            if result.is_err() {
                prop_assert_eq!(&l, &before, "a refused entry changed the ledger: {:?}", result);
            }
            prop_assert!(l.available() >= 0);
            prop_assert!(l.check().is_ok(), "{:?}", l.check());
        }
        // Replaying the stored entries rebuilds the same state, and applying
        // them all again changes nothing.
        let rebuilt = Ledger::replay(l.entries()).unwrap();
        prop_assert_eq!(&rebuilt, &l);
        let mut again = rebuilt.clone();
        for e in l.entries() {
            prop_assert!(again.apply(e.clone()).unwrap().duplicate);
        }
        prop_assert_eq!(&again, &l);
    }
}

/// The head a store reads before applying `e` to `full`: the lots `e`
/// touches and the ledger's qualifying points at `e.at`. A spending entry
/// gets either every lot with points (`all_open`) or only the first lots
/// in spending order (earliest expiry, then oldest) whose points cover it,
/// as the store reads them; an expiry or a reversal gets the lot it names.
fn head_for(full: &Ledger, e: &Entry, all_open: bool) -> LedgerHead {
    let spends = matches!(e.kind, EntryKind::Redeem)
        || matches!(e.kind, EntryKind::Adjust { delta, .. } if delta < 0);
    let named = match e.kind {
        EntryKind::Expire { lot } => Some(lot),
        EntryKind::Reverse { reverses, .. } => Some(reverses),
        _ => None,
    };
    let mut held: std::collections::BTreeSet<EntryId> = named.into_iter().collect();
    if spends && all_open {
        held.extend(
            full.lots()
                .iter()
                .filter(|(_, l)| l.remaining > 0)
                .map(|(id, _)| *id),
        );
    } else if spends {
        let mut order: Vec<_> = full
            .lots()
            .iter()
            .filter(|(_, l)| l.remaining > 0 && l.expires_at > e.at)
            .map(|(id, l)| (l.expires_at, *id, l.remaining))
            .collect();
        order.sort();
        let mut covered = 0;
        for (_, id, remaining) in order {
            if covered >= e.points {
                break;
            }
            covered += remaining;
            held.insert(id);
        }
    }
    LedgerHead {
        entries: full.len(),
        last_at: full.last_at(),
        totals: full.totals(),
        lots: full
            .lots()
            .iter()
            .filter(|(id, _)| held.contains(id))
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
        qualifying: Some((e.at, full.qualifying_12m(e.at))),
    }
}

proptest! {
    /// Every entry applied to a ledger resumed from the head a store reads
    /// for it (only the lots it touches, and the qualifying points at its
    /// time) has the same outcome as on the whole ledger: same answer,
    /// same totals, same lots touched, same qualifying points. Days run
    /// far enough for earns to leave the 12-month window and lots to
    /// expire.
    #[test]
    fn each_entry_on_its_head_matches_the_whole_ledger(ops in proptest::collection::vec(op(), 0..80), all_open in proptest::bool::ANY) {
        let mut full = Ledger::new();
        let mut day = 0i64;
        for (n, o) in ops.iter().enumerate() {
            let key = format!("k{n}");
            let entries: Vec<Entry> = match o {
                Op::Earn(p, d) => vec![earn(*p, day, day + d * 8, &key)],
                Op::Redeem(p) => vec![redeem(*p, day, &key)],
                Op::Adjust(0) | Op::Replay(_) => vec![],
                Op::Adjust(d) => {
                    let exp = (*d > 0).then(|| t(day + 300));
                    vec![entry(EntryKind::Adjust { delta: *d, expires_at: exp }, d.abs(), day, &key)]
                }
                Op::Expire => full.due_expiries(t(day)),
                Op::Reverse(i, partial) => {
                    let earns: Vec<EntryId> = full.lots().iter().filter(|(_, x)| x.earned).map(|(id, _)| *id).collect();
                    if earns.is_empty() { vec![] } else {
                        let id = earns[i % earns.len()];
                        let rem = full.lots()[&id].remaining;
                        vec![entry(EntryKind::Reverse { reverses: id, allow_partial: *partial }, rem, day, &key)]
                    }
                }
                Op::Advance(d) => { day += d * 10; vec![] }
            };
            for e in entries {
                let mut resumed = Ledger::resume(head_for(&full, &e, all_open));
                let before = full.clone();
                let whole = full.apply(e.clone());
                let part = resumed.apply(e.clone());
                prop_assert_eq!(format!("{whole:?}"), format!("{part:?}"));
                prop_assert_eq!(resumed.len(), full.len());
                prop_assert_eq!(resumed.totals(), full.totals());
                prop_assert_eq!(resumed.available(), full.available());
                prop_assert_eq!(resumed.qualifying_12m(e.at), full.qualifying_12m(e.at));
                for (id, l) in resumed.lots() {
                    prop_assert_eq!(Some(l), full.lots().get(id));
                }
                for (id, l) in full.lots() {
                    if before.lots().get(id) != Some(l) {
                        prop_assert_eq!(Some(l), resumed.lots().get(id), "lot {:?} changed outside the head", id);
                    }
                }
                prop_assert!(resumed.check().is_ok(), "{:?}", resumed.check());
            }
        }
        prop_assert!(full.check().is_ok());
    }
}
