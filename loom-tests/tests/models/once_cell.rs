//! The per-interpreter once-cell: concurrent initialisers of one interpreter, an initialiser that
//! re-enters the cell while another thread initialises, and `forget` racing with an initialiser.
//!
//! Every value an initialiser makes is accounted for: it is the interpreter's value (released by
//! the final `forget`), or handed back to its maker as `loser`, or returned by a `forget`;
//! exactly one of these, never lost, never twice.

use interpsafe_protocol::{ForgetRefused, Init, OnceError, PerInterpreterOnce, SeededBug, Seeds};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_aborts, check, is_child_for, key, FULL_BOUND};

type Cell = PerInterpreterOnce<usize>;

/// Calls `get_or_try_init` for `id` with an initialiser that makes `made`; returns the result
/// and whether the initialiser ran. Checks what a single call can check: the initialiser's value
/// is either the interpreter's value (stored here) or handed back as `loser`.
fn init(cell: &Cell, id: i64, made: usize) -> (Init<usize>, bool) {
    let mut ran = false;
    let got = cell
        .get_or_try_init(key(id), || {
            ran = true;
            Ok::<_, ()>(made)
        })
        .expect("initialiser cannot fail, the model never re-enters here");
    if got.initialised_here {
        assert!(ran);
        assert_eq!(got.value, made);
        assert_eq!(got.loser, None);
    } else if let Some(loser) = got.loser {
        assert!(ran);
        assert_eq!(loser, made, "a loser got someone else's value back");
        assert_ne!(got.value, made);
    } else {
        assert!(!ran, "the initialiser ran but its value was neither stored nor handed back");
    }
    (got, ran)
}

/// Threads 0 and 1 initialise interpreter 1 at once (values 10 and 11); thread 2 initialises
/// interpreter 2 (value 20) when `other_key`. Afterwards the interpreters end and `forget` hands
/// their values back. Invariants: every caller for one key gets the same value; exactly one
/// caller per key initialised it; a loser gets its own value back; every value made is released
/// exactly once (the interpreter's value by `forget`, the others as `loser`); keys do not share.
fn one_value_per_interpreter(seeds: Seeds, other_key: bool) -> impl Fn() + Sync + Send + 'static {
    move || {
        let cell = Arc::new(Cell::with_seeds(seeds.clone()));
        let mut jobs = vec![(1, 10), (1, 11)];
        if other_key {
            jobs.push((2, 20));
        }
        let threads: Vec<_> = jobs
            .iter()
            .map(|&(id, made)| {
                let cell = cell.clone();
                thread::spawn(move || init(&cell, id, made))
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();

        for id in [1, 2] {
            let mine: Vec<_> = jobs.iter().zip(&results).filter(|((i, _), _)| *i == id).collect();
            if mine.is_empty() {
                assert_eq!(cell.get(key(id)), None);
                continue;
            }
            let value = mine[0].1 .0.value;
            for (_, (got, _)) in &mine {
                assert_eq!(got.value, value, "two values handed out for interpreter {id}");
            }
            let here = mine.iter().filter(|(_, (got, _))| got.initialised_here).count();
            assert_eq!(here, 1, "interpreter {id} initialised {here} times");
            assert_eq!(cell.get(key(id)), Some(value));

            // Release accounting: made = losers + the interpreter's value, each once.
            let mut made: Vec<_> =
                mine.iter().filter(|(_, (_, ran))| *ran).map(|((_, m), _)| *m).collect();
            let mut released: Vec<_> = mine.iter().filter_map(|(_, (got, _))| got.loser).collect();
            released.push(cell.forget(key(id)).expect("no initialiser running").expect("a value"));
            made.sort_unstable();
            released.sort_unstable();
            assert_eq!(released, made, "values made vs released for interpreter {id}");
        }
        assert!(cell.keys().is_empty());
    }
}

#[test]
fn once_one_value_per_interpreter() {
    check(
        "once_one_value_per_interpreter",
        Exhaustive,
        one_value_per_interpreter(Seeds::none(), false),
    );
}

/// The same with a third thread initialising a second interpreter: the values of the two
/// interpreters never mix. Three threads on one reader-writer lock do not fit an exhaustive search
/// in the time budget (over a minute), so this one is bounded.
#[test]
fn once_two_interpreters() {
    check("once_two_interpreters", FULL_BOUND, one_value_per_interpreter(Seeds::none(), true));
}

#[test]
fn seeded_once_no_recheck_after_init_is_found() {
    let seeds = Seeds::none().with(SeededBug::OnceNoRecheckAfterInit);
    loom_tests::assert_model_fails(
        "once_one_value_per_interpreter",
        "OnceNoRecheckAfterInit",
        Exhaustive,
        one_value_per_interpreter(seeds, false),
    );
}

/// Thread A's initialiser for interpreter 1 calls back into the cell for interpreter 1 (as Python
/// code run by an initialiser can); thread B initialises interpreter 1 plainly at the same time.
/// Invariants: the inner call is refused as `Reentrant`, unless B stored meanwhile, when it gets
/// B's value; the outer call and B agree on one value; nothing deadlocks; values are accounted.
fn reentrant_with_racer(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let cell = Arc::new(Cell::with_seeds(seeds.clone()));
        let reenterer = {
            let cell = cell.clone();
            thread::spawn(move || {
                let mut inner_ok = None;
                let mut ran = false;
                let got = cell
                    .get_or_try_init(key(1), || {
                        ran = true;
                        match cell.get_or_try_init(key(1), || Ok::<_, ()>(99)) {
                            Err(OnceError::Reentrant { key: k }) => assert_eq!(k, key(1)),
                            Ok(inner) => {
                                assert_eq!(inner.value, 20, "the inner call ran its own init");
                                assert!(!inner.initialised_here && inner.loser.is_none());
                                inner_ok = Some(inner.value);
                            }
                            Err(e) => panic!("unexpected inner result {e:?}"),
                        }
                        Ok::<_, ()>(10)
                    })
                    .expect("outer init succeeds");
                if inner_ok.is_some() {
                    assert_eq!(got.loser, Some(10), "B stored first, so A's value is the loser");
                }
                (got, ran)
            })
        };
        let racer = {
            let cell = cell.clone();
            thread::spawn(move || init(&cell, 1, 20))
        };
        let (a, a_ran) = reenterer.join().unwrap();
        let (b, b_ran) = racer.join().unwrap();
        assert_eq!(a.value, b.value, "two values handed out for interpreter 1");
        assert_eq!(cell.get(key(1)), Some(a.value));
        let mut made: Vec<_> = [(a_ran, 10), (b_ran, 20)]
            .into_iter()
            .filter(|&(ran, _)| ran)
            .map(|(_, v)| v)
            .collect();
        let mut released: Vec<_> = [a.loser, b.loser].into_iter().flatten().collect();
        released.push(cell.forget(key(1)).unwrap().unwrap());
        made.sort_unstable();
        released.sort_unstable();
        assert_eq!(released, made);
    }
}

#[test]
fn once_reentrant_with_racer() {
    check("once_reentrant_with_racer", Exhaustive, reentrant_with_racer(Seeds::none()));
}

/// The child side of [`seeded_once_init_under_lock_is_found`]: runs the model with the
/// initialiser under the cell's lock only when started as that test's child (it aborts the
/// process); a no-op in a normal run.
#[test]
fn child_once_init_under_lock() {
    if is_child_for("once_reentrant_with_racer") {
        let seeds = Seeds::none().with(SeededBug::OnceInitUnderLock);
        check("once_reentrant_with_racer", Exhaustive, reentrant_with_racer(seeds));
    }
}

#[test]
fn seeded_once_init_under_lock_is_found() {
    // loom reports the deadlock by panicking while the initialising thread holds the cell's write
    // guard; dropping that guard during the unwind panics again and aborts, so the model runs in
    // a child process (this test binary, filtered to the child test above).
    assert_model_aborts(
        "once_reentrant_with_racer",
        "OnceInitUnderLock",
        "once_cell::child_once_init_under_lock",
        "deadlock",
    );
}

/// `initialisers` threads initialise interpreter 1 (values 10, 11, ...) while another thread,
/// ending it, forgets its value. Invariants: `forget` refuses only while an initialiser is running
/// (it would store after the forget) and says how many; otherwise it hands back the value, once;
/// every value made is released exactly once: as a loser, by that `forget`, or by the final
/// `forget` after all threads finished.
fn forget_vs_init(seeds: Seeds, initialisers: usize) -> impl Fn() + Sync + Send + 'static {
    move || {
        let cell = Arc::new(Cell::with_seeds(seeds.clone()));
        let threads: Vec<_> = (0..initialisers)
            .map(|n| {
                let cell = cell.clone();
                thread::spawn(move || (10 + n, init(&cell, 1, 10 + n)))
            })
            .collect();
        let forgetter = {
            let cell = cell.clone();
            thread::spawn(move || cell.forget(key(1)))
        };
        let mut made = Vec::new();
        let mut released = Vec::new();
        for t in threads {
            let (value, (got, ran)) = t.join().unwrap();
            if ran {
                made.push(value);
            }
            released.extend(got.loser);
        }
        match forgetter.join().unwrap() {
            Ok(v) => released.extend(v),
            Err(ForgetRefused { key: k, running }) => {
                assert_eq!(k, key(1));
                assert!((1..=initialisers).contains(&running), "refused with {running} running");
            }
        }
        released.extend(cell.forget(key(1)).expect("nothing running now"));
        made.sort_unstable();
        released.sort_unstable();
        assert!(!made.is_empty(), "nobody initialised");
        assert_eq!(released, made, "values made vs released");
        assert_eq!(cell.get(key(1)), None);
    }
}

#[test]
fn once_forget_vs_init() {
    check("once_forget_vs_init", Exhaustive, forget_vs_init(Seeds::none(), 1));
}

#[test]
fn once_forget_vs_two_inits() {
    check("once_forget_vs_two_inits", Exhaustive, forget_vs_init(Seeds::none(), 2));
}
