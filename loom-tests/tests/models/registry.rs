//! The interpreter registry: attach guards against the end of an interpreter, concurrent ends,
//! the end of the main interpreter (epochs), and the fast-path flag of the tagged strategy.

use std::time::Duration;

use interpsafe_protocol::{
    AttachRefused, EndRefused, Epoch, Holder, InterpreterId, InterpreterKey, Registry, SeededBug,
    Seeds, Status, NO_FAST_OWNER,
};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use loom::sync::Arc;
use loom::thread;
use loom_tests::Search::Exhaustive;
use loom_tests::{assert_model_fails, check, FULL_BOUND};

/// The address the model registers for interpreter 1 (a stand-in for its `PyInterpreterState*`).
const HANDLE: usize = 0x1000;

fn holder(name: &str) -> Holder {
    Holder { thread: name.to_string() }
}

// The model's own atomics (holder counts, the "destroyed" record) use `Relaxed`
// read-modify-writes to read: those always see the latest value, so a stale read cannot hide a
// violation, and `Relaxed` adds no happens-before edge the protocol must provide itself.

/// "Binds" a handle of `key` on a thread that holds a guard on it: the interpreter must not have
/// ended, neither in the registry nor in the model's record of `Py_EndInterpreter` (`destroyed`,
/// set by the ending thread right before it reports the end).
///
/// The status may be `Ending`: an end that began after this guard was taken waits for it (PEP
/// 788), so "alive" here means "not ended", not `Status::Alive`.
fn bind(reg: &Registry, key: InterpreterKey, destroyed: &AtomicBool) {
    assert!(
        !destroyed.fetch_or(false, Relaxed),
        "bound a handle of {key} while holding a guard, after Py_EndInterpreter ran"
    );
    let status = reg.status(key);
    assert_ne!(status, Some(Status::Ended), "bound a handle of {key} after it ended");
    assert_ne!(status, None, "{key} vanished from the registry");
}

/// Each attaching thread takes its number of guards on interpreter 1 (from `attachers`), binds
/// while holding each, and releases them last-taken first, binding again while any is still
/// held; another thread ends interpreter 1 and, once `end` returns, "calls Py_EndInterpreter" and
/// reports `ended`. Without a timeout `end` waits for the guards. With `Some(Duration::ZERO)` the
/// bounded wait runs out at once (loom has no clock; a zero budget is how a model reaches the
/// timeout path): `end` either finds no holder, or refuses with `Busy` and puts the interpreter
/// back to `Alive`; the main thread then ends it once every attacher is done.
///
/// Invariants: a guard is never held while the interpreter is ended or being destroyed (no handle
/// bound after its owner ended); `end` returns `Ok` only once no guard is held (it waits for held
/// guards, and later attaches are refused); a `Busy` refusal names held guards and leaves the
/// interpreter `Alive`; afterwards the interpreter is `Ended` with no holders; no deadlock.
fn end_vs_attach(
    seeds: Seeds,
    attachers: &'static [usize],
    timeout: Option<Duration>,
) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let key = reg.observe(InterpreterId(1), HANDLE).key;
        // Guards the attaching threads hold by their own count: raised after `attach` returns,
        // lowered before `detach`, so it never over-counts.
        let attached = Arc::new(AtomicUsize::new(0));
        let destroyed = Arc::new(AtomicBool::new(false));

        let threads: Vec<_> = attachers
            .iter()
            .enumerate()
            .map(|(n, &guards)| {
                let (reg, attached, destroyed) = (reg.clone(), attached.clone(), destroyed.clone());
                thread::spawn(move || {
                    let me = holder(&format!("attacher {n}"));
                    let mut held = Vec::new();
                    for _ in 0..guards {
                        match reg.attach(key, me.clone()) {
                            Ok((guard, handle)) => {
                                attached.fetch_add(1, Relaxed);
                                held.push(guard);
                                assert_eq!(handle, HANDLE);
                                bind(&reg, key, &destroyed);
                            }
                            Err(AttachRefused::Ending(_) | AttachRefused::Ended(_)) => break,
                            Err(e) => panic!("unexpected refusal: {e}"),
                        }
                    }
                    while let Some(guard) = held.pop() {
                        bind(&reg, key, &destroyed);
                        attached.fetch_sub(1, Relaxed);
                        reg.detach(key, guard);
                    }
                })
            })
            .collect();

        let ender = {
            let (reg, attached, destroyed) = (reg.clone(), attached.clone(), destroyed.clone());
            thread::spawn(move || match reg.end(key, &holder("ender"), timeout) {
                Ok(()) => {
                    assert_eq!(
                        attached.fetch_add(0, Relaxed),
                        0,
                        "end returned while an attacher held a guard"
                    );
                    assert!(reg.holders(key).is_empty(), "end returned with holders");
                    assert_eq!(reg.status(key), Some(Status::Ending));
                    destroyed.store(true, Relaxed);
                    reg.ended(key);
                    true
                }
                Err(EndRefused::Busy { key: k, holders, .. }) if timeout.is_some() => {
                    assert_eq!(k, key);
                    assert!(!holders.is_empty(), "Busy without holders");
                    assert!(holders.iter().all(|h| h.thread.starts_with("attacher")));
                    assert_eq!(reg.status(key), Some(Status::Alive), "Busy left it not alive");
                    false
                }
                Err(e) => panic!("unexpected refusal: {e}"),
            })
        };

        for t in threads {
            t.join().unwrap();
        }
        if !ender.join().unwrap() {
            // The timed end gave up; with every attacher done, an end goes through.
            reg.end(key, &holder("main"), None).expect("no holders left");
            reg.ended(key);
        }
        assert_eq!(reg.status(key), Some(Status::Ended));
        assert!(reg.holders(key).is_empty());
        assert_eq!(reg.attach(key, holder("late")), Err(AttachRefused::Ended(key)));
    }
}

#[test]
fn registry_end_waits_for_guard() {
    check("registry_end_waits_for_guard", Exhaustive, end_vs_attach(Seeds::none(), &[1], None));
}

#[test]
fn registry_end_waits_for_two_guards() {
    check(
        "registry_end_waits_for_two_guards",
        Exhaustive,
        end_vs_attach(Seeds::none(), &[2], None),
    );
}

#[test]
fn registry_end_waits_for_two_attachers() {
    check(
        "registry_end_waits_for_two_attachers",
        FULL_BOUND,
        end_vs_attach(Seeds::none(), &[1, 1], None),
    );
}

#[test]
fn registry_timed_end_refuses_while_held() {
    check(
        "registry_timed_end_refuses_while_held",
        Exhaustive,
        end_vs_attach(Seeds::none(), &[2], Some(Duration::ZERO)),
    );
}

#[test]
fn seeded_attach_check_then_act_is_found() {
    let seeds = Seeds::none().with(SeededBug::AttachCheckThenAct);
    assert_model_fails(
        "registry_end_waits_for_guard",
        "AttachCheckThenAct",
        Exhaustive,
        end_vs_attach(seeds, &[1], None),
    );
}

#[test]
fn seeded_end_skips_recheck_is_found() {
    // One guard is not enough: the only wake-up comes from its detach, which empties the list.
    let seeds = Seeds::none().with(SeededBug::EndSkipsRecheck);
    assert_model_fails(
        "registry_end_waits_for_two_guards",
        "EndSkipsRecheck",
        Exhaustive,
        end_vs_attach(seeds, &[2], None),
    );
}

/// Two threads end interpreter 1 at once; one of them gives up (`abandon_end`), the other
/// completes the end. Invariants: at most one end is in progress at any time (never two
/// `Py_EndInterpreter` calls), a refused end names the reason (`AlreadyEnding`/`AlreadyEnded`),
/// and the final status matches what happened: `Ended` if the completing thread's end was
/// accepted, else `Alive` again.
fn two_enders(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let key = reg.observe(InterpreterId(1), HANDLE).key;
        let in_progress = Arc::new(AtomicUsize::new(0));

        let spawn_ender = |complete: bool| {
            let (reg, in_progress) = (reg.clone(), in_progress.clone());
            thread::spawn(move || {
                let name = if complete { "completer" } else { "abandoner" };
                match reg.end(key, &holder(name), None) {
                    Ok(()) => {
                        assert_eq!(in_progress.fetch_add(1, Relaxed), 0, "two ends in progress");
                        in_progress.fetch_sub(1, Relaxed);
                        if complete {
                            reg.ended(key);
                        } else {
                            reg.abandon_end(key);
                        }
                        true
                    }
                    Err(EndRefused::AlreadyEnding(_) | EndRefused::AlreadyEnded(_)) => false,
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            })
        };
        let abandoner = spawn_ender(false);
        let completer = spawn_ender(true);
        let _ = abandoner.join().unwrap();
        let completed = completer.join().unwrap();
        let expected = if completed { Status::Ended } else { Status::Alive };
        assert_eq!(reg.status(key), Some(expected));
    }
}

#[test]
fn registry_two_enders() {
    check("registry_two_enders", Exhaustive, two_enders(Seeds::none()));
}

/// One thread enters interpreter 1 for the first time (`observe`) while another reports that the
/// main interpreter ended (the runtime was finalised, the epoch advances). Invariants: an
/// interpreter of epoch 0 is `Ended` afterwards, one seen in epoch 1 is `Alive`; the lock-free
/// epoch copy is never behind what the lock handed out; afterwards both read epoch 1.
fn main_end_advances_epoch(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let main = reg.observe(InterpreterId::MAIN, 0x10).key;
        let observer = {
            let reg = reg.clone();
            thread::spawn(move || {
                let seen = reg.observe(InterpreterId(1), HANDLE);
                assert!(seen.first_entry);
                assert!(reg.epoch_relaxed() >= seen.key.epoch, "relaxed epoch behind the lock");
                seen.key
            })
        };
        let finaliser = {
            let reg = reg.clone();
            thread::spawn(move || reg.ended(main))
        };
        let key = observer.join().unwrap();
        finaliser.join().unwrap();
        let expected = if key.epoch == Epoch(0) { Status::Ended } else { Status::Alive };
        assert_eq!(reg.status(key), Some(expected));
        assert_eq!(reg.epoch(), Epoch(1));
        assert_eq!(reg.epoch_relaxed(), Epoch(1));
        assert_eq!(reg.status(main), Some(Status::Ended));
    }
}

#[test]
fn registry_main_end_advances_epoch() {
    check("registry_main_end_advances_epoch", Exhaustive, main_end_advances_epoch(Seeds::none()));
}

/// The tagged strategy's fast path: `observers` threads enter interpreter 1 (`observe`, under the
/// registry lock); another finds it through the registry and attaches to it. Invariants: the
/// attached thread, and every observer once `observe` returns, reads `only_main_seen() == false`
/// and `fast_owner() == NO_FAST_OWNER`, so none takes the main-interpreter fast path while in
/// interpreter 1; exactly one observer gets `first_entry` (the FFI edge installs the end observer
/// once) and all get the same key. Before the second interpreter exists both may read either way;
/// after all threads finish they read "no fast path".
fn fast_path_flag(seeds: Seeds, observers: usize) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let main = reg.observe(InterpreterId::MAIN, 0x10).key;
        assert!(reg.only_main_seen());
        assert_eq!(reg.fast_owner(), main.pack(), "main alone, but its handles take no fast path");
        let observers: Vec<_> = (0..observers)
            .map(|_| {
                let reg = reg.clone();
                thread::spawn(move || {
                    let seen = reg.observe(InterpreterId(1), HANDLE);
                    // Whether it stored the flag itself or found the entry under the lock.
                    assert!(!reg.only_main_seen(), "observed {} but the flag is clear", seen.key);
                    assert_eq!(reg.fast_owner(), NO_FAST_OWNER, "observed {} but main's handles \
                        still skip the lookup", seen.key);
                    seen
                })
            })
            .collect();
        let attacher = {
            let reg = reg.clone();
            thread::spawn(move || {
                if let Some(key) = reg.lookup(InterpreterId(1)) {
                    let (guard, _) = reg.attach(key, holder("attacher")).expect("alive");
                    assert!(
                        !reg.only_main_seen(),
                        "attached to {key} but only_main_seen() is true: the tagged strategy \
                         would tag objects as main's"
                    );
                    assert_eq!(
                        reg.fast_owner(),
                        NO_FAST_OWNER,
                        "attached to {key} but main's handles still skip the lookup: a handle \
                         of main would bind in interpreter 1"
                    );
                    reg.detach(key, guard);
                }
            })
        };
        let seen: Vec<_> = observers.into_iter().map(|t| t.join().unwrap()).collect();
        attacher.join().unwrap();
        assert!(!reg.only_main_seen());
        assert_eq!(reg.fast_owner(), NO_FAST_OWNER);
        let first = seen.iter().filter(|o| o.first_entry).count();
        assert_eq!(first, 1, "interpreter 1 had {first} first entries");
        assert!(seen.iter().all(|o| o.key == seen[0].key), "one interpreter, two keys: {seen:?}");
    }
}

#[test]
fn registry_fast_path_flag() {
    check("registry_fast_path_flag", Exhaustive, fast_path_flag(Seeds::none(), 1));
}

#[test]
fn registry_fast_path_flag_two_observers() {
    check("registry_fast_path_flag_two_observers", Exhaustive, fast_path_flag(Seeds::none(), 2));
}

#[test]
fn seeded_observe_flag_after_unlock_is_found() {
    let seeds = Seeds::none().with(SeededBug::ObserveFlagAfterUnlock);
    assert_model_fails(
        "registry_fast_path_flag",
        "ObserveFlagAfterUnlock",
        Exhaustive,
        fast_path_flag(seeds, 1),
    );
}
