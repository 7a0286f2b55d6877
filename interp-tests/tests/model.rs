//! Model-based tests: random sequences of creating and ending interpreters and of making,
//! binding, cloning, dropping and sending handles, each step's outcome compared with a small
//! reference model of who owns what. Run for every checked strategy (the baseline is excluded:
//! its cross-interpreter outcomes are undefined behaviour, which the hazard suite observes in a
//! child process instead).

use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::decref_stats;
use interpsafe::strategy::{Affine, Branded, Scoped, Tagged};
use interpsafe::{attach, InterpreterKey, Isolation, Strategy as HandleStrategy, SubInterpreter};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Create a subinterpreter.
    Create,
    /// End subinterpreter number `i` (modulo the live ones).
    End(usize),
    /// Make a handle to a fresh object in interpreter `i`.
    Make(usize),
    /// Use handle `h` in interpreter `i`: load and bind.
    Bind(usize, usize),
    /// Clone handle `h` in interpreter `i`.
    Clone(usize, usize),
    /// Drop handle `h` on a thread attached to nothing.
    Drop(usize),
    /// Send handle `h` to another thread and use it in interpreter `i` there.
    Send(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Create),
        1 => any::<usize>().prop_map(Op::End),
        3 => any::<usize>().prop_map(Op::Make),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(h, i)| Op::Bind(h, i)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(h, i)| Op::Clone(h, i)),
        2 => any::<usize>().prop_map(Op::Drop),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(h, i)| Op::Send(h, i)),
    ]
}

/// The reference model: interpreters (index 0 is main) and handles with their owners.
struct Model {
    interps: Vec<(InterpreterKey, bool)>,
    owners: Vec<usize>,
}

impl Model {
    fn live(&self) -> Vec<usize> {
        (0..self.interps.len()).filter(|&i| self.interps[i].1).collect()
    }
}

/// Runs `ops` against strategy `S`; panics (failing the property) on any divergence.
fn run<S: HandleStrategy>(ops: &[Op]) {
    let main = main_interpreter();
    let mut subs: Vec<Option<SubInterpreter>> = vec![None];
    let mut model = Model { interps: vec![(main, true)], owners: vec![] };
    let mut handles: Vec<Option<S::Stored>> = vec![];
    let stats_before = decref_stats();
    for op in ops {
        let live = model.live();
        let pick = |i: usize| live[i % live.len()];
        match op.clone() {
            Op::Create => {
                if model.interps.len() < 4 {
                    let s = SubInterpreter::new(Isolation::OwnGil).unwrap();
                    model.interps.push((s.key(), true));
                    subs.push(Some(s));
                }
            }
            Op::End(i) => {
                let subs_live: Vec<usize> = live.iter().copied().filter(|&j| j != 0).collect();
                if let Some(&j) = subs_live.get(i % subs_live.len().max(1)) {
                    subs[j].take().unwrap().end(None).unwrap();
                    model.interps[j].1 = false;
                }
            }
            Op::Make(i) => {
                let j = pick(i);
                let stored = attach(model.interps[j].0, |at| {
                    S::enter(at, |scope| S::store(scope, S::eval(scope, c"object()").unwrap()))
                })
                .unwrap();
                handles.push(Some(stored));
                model.owners.push(j);
            }
            Op::Bind(h, i) | Op::Clone(h, i) | Op::Send(h, i) => {
                if handles.is_empty() {
                    continue;
                }
                let h = h % handles.len();
                let Some(stored) = handles[h].take() else { continue };
                let j = pick(i);
                let expect_ok = model.owners[h] == j;
                let cloning = matches!(op, Op::Clone(..));
                let sending = matches!(op, Op::Send(..));
                let key = model.interps[j].0;
                let work = move || {
                    attach(key, move |at| {
                        S::enter(at, |scope| match S::load(scope, stored) {
                            Err(e) => (false, None, Some(e.to_string())),
                            Ok(handle) => {
                                let bound =
                                    S::bind(scope, &handle).map(|_| ()).map_err(|e| e.to_string());
                                if bound.is_ok() && cloning {
                                    drop(S::clone_handle(scope, &handle).unwrap());
                                }
                                let back = Some(S::store(scope, handle));
                                match bound {
                                    Ok(()) => (true, back, None),
                                    Err(e) => (false, back, Some(e)),
                                }
                            }
                        })
                    })
                    .unwrap()
                };
                let (ok, back, message) =
                    if sending { std::thread::spawn(work).join().unwrap() } else { work() };
                assert_eq!(
                    ok,
                    expect_ok,
                    "{}: {op:?} owner {} used in {j}: {message:?}",
                    S::NAME,
                    model.owners[h]
                );
                if let Some(message) = message {
                    assert!(
                        message.contains(&format!(
                            "interpreter {}",
                            model.interps[model.owners[h]].0.id.0
                        )),
                        "{message}"
                    );
                }
                // A refused load consumed (and released or deferred) the handle.
                match back {
                    Some(back) => handles[h] = Some(back),
                    None => handles[h] = None,
                }
            }
            Op::Drop(h) => {
                if !handles.is_empty() {
                    let h = h % handles.len();
                    drop(handles[h].take());
                }
            }
        }
    }
    // Everything left is dropped, every live interpreter is attached once (draining its queue)
    // and ended; the pool must then balance: every deferral released or discarded.
    drop(handles);
    for (j, sub) in subs.iter_mut().enumerate() {
        if let Some(s) = sub.take() {
            attach(model.interps[j].0, |_| ()).unwrap();
            let mut s = s;
            s.end(None).unwrap();
        }
    }
    attach(main, |_| ()).unwrap();
    let after = decref_stats();
    assert!(after.balanced(), "{}: pool out of balance: {after:?}", S::NAME);
    assert_eq!(after.stranded, stats_before.stranded, "{}", S::NAME);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 64, .. ProptestConfig::default() })]

    #[test]
    fn tagged_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        run::<Tagged>(&ops);
    }

    #[test]
    fn scoped_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        run::<Scoped>(&ops);
    }

    #[test]
    fn branded_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        run::<Branded>(&ops);
    }

    #[test]
    fn affine_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        run::<Affine>(&ops);
    }
}
