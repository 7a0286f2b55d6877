//! Unit tests of the per-interpreter once-cell with real threads (loom-tests checks the
//! interleavings).

use super::*;
use crate::id::{Epoch, InterpreterId};
use std::convert::Infallible;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use std::thread;

fn key(id: i64) -> InterpreterKey {
    InterpreterKey { epoch: Epoch(0), id: InterpreterId(id) }
}

fn ok(v: usize) -> impl FnOnce() -> Result<usize, Infallible> {
    move || Ok(v)
}

#[test]
fn initialises_once_and_then_reads() {
    let cell = PerInterpreterOnce::<usize>::new();
    assert_eq!(cell.get(key(1)), None);
    let first = cell.get_or_try_init(key(1), ok(10)).unwrap();
    assert_eq!(first, Init { value: 10, loser: None, initialised_here: true });
    let second = cell
        .get_or_try_init(key(1), || -> Result<usize, Infallible> { panic!("must not run again") })
        .unwrap();
    assert_eq!(second, Init { value: 10, loser: None, initialised_here: false });
    assert_eq!(cell.get(key(1)), Some(10));
}

#[test]
fn interpreters_never_share_a_value() {
    let cell = PerInterpreterOnce::<usize>::new();
    let _ = cell.get_or_try_init(key(1), ok(100)).unwrap();
    assert_eq!(cell.get(key(2)), None, "B must not see A's value");
    let _ = cell.get_or_try_init(key(2), ok(200)).unwrap();
    let other_epoch = InterpreterKey { epoch: Epoch(1), id: InterpreterId(1) };
    assert_eq!(cell.get(other_epoch), None, "same ID in a later runtime is another interpreter");
    assert_eq!(cell.get(key(1)), Some(100));
    assert_eq!(cell.get(key(2)), Some(200));
    assert_eq!(cell.keys(), vec![key(1), key(2)]);
}

#[test]
fn reentrant_init_is_an_error_naming_the_interpreter() {
    let cell = PerInterpreterOnce::<usize>::new();
    let mut inner = None;
    let outer = cell
        .get_or_try_init(key(3), || {
            inner = Some(cell.get_or_try_init(key(3), ok(1)));
            // Another interpreter's slot may be initialised from inside (a nested switch).
            assert_eq!(cell.get_or_try_init(key(4), ok(4)).unwrap().value, 4);
            Ok::<_, Infallible>(33)
        })
        .unwrap();
    let err = inner.unwrap().unwrap_err();
    assert_eq!(err, OnceError::Reentrant { key: key(3) });
    assert!(err.to_string().contains("interpreter 3"), "{err}");
    assert_eq!(outer.value, 33);
    assert!(outer.initialised_here);
    assert_eq!(cell.get(key(4)), Some(4));
}

#[test]
fn failed_init_leaves_the_cell_empty_and_retries() {
    let cell = PerInterpreterOnce::<usize>::new();
    let err = cell.get_or_try_init(key(1), || Err::<usize, _>("import failed")).unwrap_err();
    assert_eq!(err, OnceError::Init { key: key(1), error: "import failed" });
    let msg = err.to_string();
    assert!(msg.contains("interpreter 1") && msg.contains("import failed"), "{msg}");
    assert_eq!(cell.get(key(1)), None);
    let again = cell.get_or_try_init(key(1), ok(5)).unwrap();
    assert!(again.initialised_here, "a failed attempt must not look re-entrant afterwards");
}

#[test]
fn panicking_init_is_not_taken_for_reentry_later() {
    let cell = PerInterpreterOnce::<usize>::new();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _ = cell.get_or_try_init(key(1), || -> Result<usize, Infallible> { panic!("boom") });
    }));
    assert!(caught.is_err());
    assert_eq!(cell.get_or_try_init(key(1), ok(7)).unwrap().value, 7);
    assert_eq!(cell.forget(key(1)), Ok(Some(7)), "no running initialiser left behind");
}

#[test]
fn concurrent_initialisers_both_run_first_wins_loser_handed_back() {
    let cell = Arc::new(PerInterpreterOnce::<usize>::new());
    let both_running = Arc::new(Barrier::new(2));
    let results: Vec<_> = (0..2usize)
        .map(|t| {
            let (cell, both_running) = (cell.clone(), both_running.clone());
            thread::spawn(move || {
                cell.get_or_try_init(key(1), || {
                    // Both initialisers are running at once: neither holds the cell's lock.
                    both_running.wait();
                    Ok::<_, Infallible>(1000 + t)
                })
                .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let winners: Vec<_> = results.iter().filter(|r| r.initialised_here).collect();
    let losers: Vec<_> = results.iter().filter(|r| !r.initialised_here).collect();
    assert_eq!((winners.len(), losers.len()), (1, 1), "{results:?}");
    let (w, l) = (winners[0], losers[0]);
    assert_eq!(w.loser, None);
    assert_eq!(l.value, w.value, "one value per interpreter");
    let lost = l.loser.expect("the loser's own value is handed back");
    assert_ne!(lost, w.value);
    assert_eq!(cell.get(key(1)), Some(w.value));
}

#[test]
fn many_threads_many_interpreters_agree_per_interpreter() {
    const THREADS: usize = 8;
    const KEYS: i64 = 4;
    let cell = Arc::new(PerInterpreterOnce::<usize>::new());
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cell, start) = (cell.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                (0..KEYS)
                    .map(|k| {
                        let init = cell
                            .get_or_try_init(key(k), || {
                                thread::yield_now();
                                Ok::<_, Infallible>(((k as usize) << 32) | t)
                            })
                            .unwrap();
                        if let Some(lost) = init.loser {
                            assert_eq!(lost >> 32, k as usize, "loser from another interpreter");
                        }
                        init.value
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let seen: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for k in 0..KEYS as usize {
        let v = seen[0][k];
        assert_eq!(v >> 32, k, "a value from another interpreter");
        assert!(seen.iter().all(|s| s[k] == v), "two values for interpreter {k}");
        assert_eq!(cell.get(key(k as i64)), Some(v));
    }
}

#[test]
fn forget_hands_back_the_value_and_only_that_interpreters() {
    let cell = PerInterpreterOnce::<usize>::new();
    let _ = cell.get_or_try_init(key(1), ok(1)).unwrap();
    let _ = cell.get_or_try_init(key(2), ok(2)).unwrap();
    assert_eq!(cell.forget(key(1)), Ok(Some(1)));
    assert_eq!(cell.forget(key(1)), Ok(None));
    assert_eq!(cell.get(key(1)), None);
    assert_eq!(cell.get(key(2)), Some(2));
}

#[test]
fn forget_is_refused_while_an_initialiser_runs() {
    let cell = PerInterpreterOnce::<usize>::new();
    let mut refused = None;
    let _ = cell
        .get_or_try_init(key(5), || {
            refused = Some(cell.forget(key(5)));
            Ok::<_, Infallible>(5)
        })
        .unwrap();
    let err = refused.unwrap().unwrap_err();
    assert_eq!(err, ForgetRefused { key: key(5), running: 1 });
    assert!(err.to_string().contains("interpreter 5"), "{err}");
    assert_eq!(cell.forget(key(5)), Ok(Some(5)));
}

#[test]
fn retire_hands_back_the_value_and_refuses_later_stores() {
    let cell = PerInterpreterOnce::<usize>::new();
    let _ = cell.get_or_try_init(key(1), || Ok::<_, ()>(10)).unwrap();
    let _ = cell.get_or_try_init(key(2), || Ok::<_, ()>(20)).unwrap();
    assert_eq!(cell.retire(key(1)), Some(10));
    assert_eq!(cell.retire(key(1)), None, "retired once");
    assert_eq!(cell.get(key(1)), None);
    let mut ran = false;
    let err = cell
        .get_or_try_init(key(1), || {
            ran = true;
            Ok::<_, ()>(11)
        })
        .unwrap_err();
    assert_eq!(err, OnceError::Ended { key: key(1), unstored: None });
    assert!(!ran, "no initialiser runs for a retired interpreter");
    assert_eq!(cell.get(key(2)), Some(20), "other interpreters keep theirs");
    // A key retired before it ever had a value is refused too.
    assert_eq!(cell.retire(key(3)), None);
    assert!(cell.get_or_try_init(key(3), || Ok::<_, ()>(30)).is_err());
}

#[test]
fn an_initialiser_finishing_after_retire_gets_its_value_back() {
    let cell = PerInterpreterOnce::<usize>::new();
    let err = cell
        .get_or_try_init(key(1), || {
            assert_eq!(cell.retire(key(1)), None);
            Ok::<_, ()>(10)
        })
        .unwrap_err();
    assert_eq!(err, OnceError::Ended { key: key(1), unstored: Some(10) });
    assert_eq!(cell.get(key(1)), None);
    assert!(cell.keys().is_empty());
}

#[test]
fn slotted_once_retires_both_paths() {
    let cell = SlottedOnce::new();
    let got = cell.get_or_try_init(key(1), Some(4), || Ok::<_, ()>(0x1000)).unwrap();
    assert_eq!(got.value, 0x1000);
    assert_eq!(cell.get_fast(4), Some(0x1000));
    assert_eq!(cell.retire(key(1), Some(4)), Some(0x1000));
    assert_eq!(cell.get_fast(4), None);
    assert!(cell.get_or_try_init(key(1), Some(4), || Ok::<_, ()>(0x2000)).is_err());
    assert_eq!(cell.get_fast(4), None);
}
