//! The interpreter registry: attach guards against the end of an interpreter, concurrent ends,
//! the end of the main interpreter (epochs), the fast-path flag of the tagged strategy, and the
//! in-flight handshake (`enter_attached`/`leave_attached`) against an end that Python code
//! began (`end_begins`).

use std::time::Duration;

use interpsafe_protocol::{
    AttachRefused, EndRefused, Epoch, Holder, InterpreterId, InterpreterKey, Registry, SeededBug,
    Seeds, Status, NO_FAST_OWNER,
};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use loom::sync::{Arc, Mutex};
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
                    assert_eq!(
                        reg.fast_owner(),
                        NO_FAST_OWNER,
                        "observed {} but main's handles \
                        still skip the lookup",
                        seen.key
                    );
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

/// Bits of the end-begins models' shared record: one word, so that each check is a single
/// read-modify-write (fewer scheduling points than one atomic per fact, and an RMW always reads
/// the latest value). INSIDE: the attacher is between a successful `enter_attached` and its
/// `leave_attached` (raised after the one, lowered before the other, so it never over-counts).
const INSIDE: usize = 1;
/// The pinner holds a pinning guard and reads the interpreter's memory (raised after
/// `attach_pinning` returns, lowered before `detach`).
const PINNED: usize = 2;
/// The destroyer's detach hook ran: `end_begins` had already moved the interpreter to `Ending`.
const BEGUN: usize = 4;
/// The destroyer's `end_begins` returned.
const RETURNED: usize = 8;

/// Which paths an end-begins model took, gathered over every interleaving of one run, so a test
/// can show that its search reached each of them (the invariants are not vacuous). A plain std
/// atomic: bookkeeping outside the model, never a scheduling point, and never touched inside the
/// detach hook.
#[derive(Debug, Default)]
struct Paths(std::sync::atomic::AtomicUsize);

/// The attacher's `attach` was refused: the end had begun.
const PATH_ATTACH_REFUSED: usize = 1;
/// The attacher held a guard but `enter_attached` was refused.
const PATH_ENTER_REFUSED: usize = 2;
/// The attacher ran attached.
const PATH_ENTERED: usize = 4;
/// `end_begins` detached to wait for an attachment (its hook ran).
const PATH_WAITED: usize = 8;
/// `end_begins` returned while another thread's idle guard was still held, and counted it.
const PATH_IDLE_GUARD_COUNTED: usize = 16;
/// Every path above.
const ALL_PATHS: usize = 31;

impl Paths {
    /// Records that `path` was taken.
    fn record(&self, path: usize) {
        self.0.fetch_or(path, std::sync::atomic::Ordering::Relaxed);
    }

    /// Panics unless every path was taken in some interleaving.
    fn assert_all_taken(&self, model: &str) {
        let taken = self.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(taken, ALL_PATHS, "model {model} did not reach every path (bits {taken:#07b})");
    }
}

/// An end that the toolkit does not drive (Python's `_interpreters.destroy`, reported by the
/// interpreter's `atexit` hook as `end_begins`) against a thread that attaches through a guard.
///
/// The attacher takes an ordinary guard (`attach`), then `attachments` times begins an
/// attachment (`enter_attached`), runs in the interpreter (takes its GIL) and leaves
/// (`leave_attached`); then it releases the guard (`detach`). The destroyer runs the `atexit`
/// hook attached, so it holds the interpreter's GIL (a loom mutex) from the start;
/// `end_begins` must release it while waiting (`detach_while_waiting(true)`, called with the
/// registry lock released) and take it back before returning. Then the destroyer "calls
/// `Py_EndInterpreter`" and reports `ended`. With `own_guard` the destroyer holds an ordinary
/// guard of its own, taken before the end began.
///
/// `end_begins` waits for attachments, not for idle ordinary guards (on 3.13 nothing may delay
/// an end Python code started for long): a guard held but not attached when the end begins
/// refuses its next attachment instead, and is counted in the return value.
///
/// Invariants: no attachment is in progress when `end_begins` returns (checked from both sides
/// with read-modify-writes of one word, so whichever comes second sees the other); no
/// `enter_attached` succeeds once the end has begun (an attachment begun after the attacher saw
/// the hook run, or after `end_begins` returned, must be refused; so must the destroyer's own);
/// `end_begins` calls its hook with `true` then `false` and returns attached (holding the GIL);
/// it counts every ordinary guard still held (the destroyer's own, and never more than exist),
/// and no guard is taken once it returned; afterwards the interpreter is `Ended`, nobody holds
/// a guard or is attached, and a new guard is refused; no deadlock (a wait without detaching
/// would deadlock on the GIL).
fn end_begins_vs_attached(
    seeds: Seeds,
    own_guard: bool,
    attachments: usize,
    paths: std::sync::Arc<Paths>,
) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let key = reg.observe(InterpreterId(1), HANDLE).key;
        // The interpreter's GIL: the destroyer holds it while running the `atexit` hook; an
        // attached thread needs it to run.
        let gil = Arc::new(Mutex::new(()));
        let record = Arc::new(AtomicUsize::new(0));

        let attacher = {
            let (reg, gil, record, paths) =
                (reg.clone(), gil.clone(), record.clone(), paths.clone());
            thread::spawn(move || {
                let me = holder("attacher");
                let guard = match reg.attach(key, me.clone()) {
                    Ok((guard, _)) => guard,
                    Err(AttachRefused::Ending(_) | AttachRefused::Ended(_)) => {
                        paths.record(PATH_ATTACH_REFUSED);
                        return;
                    }
                    Err(e) => panic!("unexpected refusal: {e}"),
                };
                for _ in 0..attachments {
                    let begun = record.fetch_or(0, Relaxed) & BEGUN != 0;
                    match reg.enter_attached(key, guard, &me) {
                        Ok(handle) => {
                            assert_eq!(handle, HANDLE);
                            assert!(
                                !begun,
                                "enter_attached succeeded after the end of {key} began: a \
                                 thread state made in an interpreter that Python is destroying"
                            );
                            let seen = record.fetch_or(INSIDE, Relaxed);
                            assert!(
                                seen & RETURNED == 0,
                                "attached to {key} after end_begins returned"
                            );
                            // Runs Python code: needs the GIL, which the destroyer holds unless
                            // end_begins detached it.
                            drop(gil.lock().unwrap());
                            record.fetch_and(!INSIDE, Relaxed);
                            reg.leave_attached(key, &me);
                            paths.record(PATH_ENTERED);
                        }
                        Err(AttachRefused::Ending(_) | AttachRefused::Ended(_)) => {
                            paths.record(PATH_ENTER_REFUSED);
                            break;
                        }
                        Err(e) => panic!("unexpected refusal: {e}"),
                    }
                }
                reg.detach(key, guard);
            })
        };

        let destroyer = {
            let (reg, record) = (reg.clone(), record.clone());
            thread::spawn(move || {
                let me = holder("destroyer");
                let mine = own_guard.then(|| reg.attach(key, me.clone()).expect("alive").0);
                // Attached: the `atexit` hook runs with the interpreter's GIL held.
                let mut gil_held = Some(gil.lock().unwrap());
                let mut waited = false;
                // Only loom primitives in the hook (and plain locals).
                let own = reg.end_begins(key, &me, |detach| {
                    // Takes the registry lock: a hook called with it held deadlocks here.
                    assert_eq!(reg.status(key), Some(Status::Ending), "hook before the end began");
                    if detach {
                        assert!(gil_held.is_some() && !waited, "detached twice");
                        record.fetch_or(BEGUN, Relaxed);
                        waited = true;
                        gil_held = None;
                    } else {
                        assert!(gil_held.is_none(), "re-attached without detaching");
                        gil_held = Some(gil.lock().unwrap());
                    }
                });
                assert!(gil_held.is_some(), "end_begins returned detached");
                let seen = record.fetch_or(RETURNED, Relaxed);
                assert!(
                    seen & INSIDE == 0,
                    "end_begins returned while the attacher was attached to {key}"
                );
                let mine_count = usize::from(own_guard);
                assert!(
                    (mine_count..=mine_count + 1).contains(&own),
                    "end_begins counted {own} idle guards; the destroyer holds {mine_count}, the \
                     attacher at most 1"
                );
                let held = reg.holders(key).len();
                assert!(held <= own, "{held} guards held after end_begins counted {own}");
                if let Some(guard) = mine {
                    assert_eq!(
                        reg.enter_attached(key, guard, &me),
                        Err(AttachRefused::Ending(key)),
                        "the caller of end_begins attached through its own guard"
                    );
                }
                // Py_EndInterpreter runs here.
                reg.ended(key);
                drop(gil_held);
                (waited, own > mine_count)
            })
        };

        attacher.join().unwrap();
        let (waited, idle_counted) = destroyer.join().unwrap();
        if waited {
            paths.record(PATH_WAITED);
        }
        if idle_counted {
            paths.record(PATH_IDLE_GUARD_COUNTED);
        }
        assert_eq!(reg.status(key), Some(Status::Ended));
        assert!(reg.holders(key).is_empty());
        assert_eq!(reg.attached(key), 0);
        assert_eq!(reg.attach(key, holder("late")), Err(AttachRefused::Ended(key)));
    }
}

#[test]
fn registry_end_begins_waits_for_attached() {
    let name = "registry_end_begins_waits_for_attached";
    let paths = std::sync::Arc::new(Paths::default());
    check(name, FULL_BOUND, end_begins_vs_attached(Seeds::none(), false, 2, paths.clone()));
    paths.assert_all_taken(name);
}

#[test]
fn registry_end_begins_does_not_wait_for_callers_own_guard() {
    let name = "registry_end_begins_does_not_wait_for_callers_own_guard";
    let paths = std::sync::Arc::new(Paths::default());
    check(name, FULL_BOUND, end_begins_vs_attached(Seeds::none(), true, 1, paths.clone()));
    paths.assert_all_taken(name);
}

#[test]
fn seeded_attach_ignores_end_begun_is_found() {
    let seeds = Seeds::none().with(SeededBug::AttachIgnoresEndBegun);
    assert_model_fails(
        "registry_end_begins_waits_for_attached",
        "AttachIgnoresEndBegun",
        FULL_BOUND,
        end_begins_vs_attached(seeds, false, 2, Default::default()),
    );
}

#[test]
fn seeded_attach_ignores_end_begun_own_guard_is_found() {
    let seeds = Seeds::none().with(SeededBug::AttachIgnoresEndBegun);
    assert_model_fails(
        "registry_end_begins_does_not_wait_for_callers_own_guard",
        "AttachIgnoresEndBegun",
        FULL_BOUND,
        end_begins_vs_attached(seeds, true, 1, Default::default()),
    );
}

#[test]
fn seeded_end_begins_skips_wait_is_found() {
    let seeds = Seeds::none().with(SeededBug::EndBeginsSkipsWait);
    assert_model_fails(
        "registry_end_begins_waits_for_attached",
        "EndBeginsSkipsWait",
        FULL_BOUND,
        end_begins_vs_attached(seeds, false, 2, Default::default()),
    );
}

/// A pinning guard (`attach_pinning`: a holder that reads the interpreter's objects without
/// attaching, `SharedBytes`) against an end that Python code began (`end_begins`, then
/// `ended`). Invariants: `end_begins` never returns while a pinning guard is held (the pinner's
/// own record, checked from both sides), and never counts one as an idle ordinary guard.
///
/// This model found a real bug (see `docs/loom.md`): `attach_pinning` took the guard (`attach`)
/// and recorded the pin in a second critical section, so `end_begins` could run in between, find
/// no pin, count the guard as idle and return; the pin was recorded afterwards and
/// `attach_pinning` returned `Ok`. The protocol now takes the guard and the pin under one lock.
fn end_begins_vs_pinning(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let key = reg.observe(InterpreterId(1), HANDLE).key;
        let record = Arc::new(AtomicUsize::new(0));
        let pinner = {
            let (reg, record) = (reg.clone(), record.clone());
            thread::spawn(move || match reg.attach_pinning(key, holder("pinner")) {
                Ok((guard, handle)) => {
                    assert_eq!(handle, HANDLE);
                    let seen = record.fetch_or(PINNED, Relaxed);
                    assert!(
                        seen & RETURNED == 0,
                        "attach_pinning returned a pin on {key} after end_begins returned: the \
                         pinner reads an interpreter that Python is destroying"
                    );
                    record.fetch_and(!PINNED, Relaxed);
                    reg.detach(key, guard);
                }
                Err(AttachRefused::Ending(_) | AttachRefused::Ended(_)) => {}
                Err(e) => panic!("unexpected refusal: {e}"),
            })
        };
        let destroyer = {
            let (reg, record) = (reg.clone(), record.clone());
            thread::spawn(move || {
                let own = reg.end_begins(key, &holder("destroyer"), |_| {});
                let seen = record.fetch_or(RETURNED, Relaxed);
                assert!(seen & PINNED == 0, "end_begins returned while {key} was pinned");
                assert_eq!(own, 0, "end_begins counted the pinning guard as an idle one");
                reg.ended(key);
            })
        };
        pinner.join().unwrap();
        destroyer.join().unwrap();
        assert_eq!(reg.status(key), Some(Status::Ended));
        assert!(reg.holders(key).is_empty());
    }
}

#[test]
fn registry_end_begins_waits_for_pinning_guard() {
    check(
        "registry_end_begins_waits_for_pinning_guard",
        Exhaustive,
        end_begins_vs_pinning(Seeds::none()),
    );
}

#[test]
fn seeded_attach_pinning_two_steps_is_found() {
    assert_model_fails(
        "registry_end_begins_waits_for_pinning_guard",
        "AttachPinningTwoSteps",
        Exhaustive,
        end_begins_vs_pinning(Seeds::none().with(SeededBug::AttachPinningTwoSteps)),
    );
}

/// The toolkit ends interpreter 1 (`end`; on `Ok` its worker runs `Py_EndInterpreter`, whose
/// `atexit` hook reports `end_begins` on the worker's behalf, then `ended`) while Python code
/// destroys it too (`end_begins`, then `ended`). No guard is held, so neither has anything to
/// wait for.
///
/// Invariants: no deadlock; the toolkit's `end` is either accepted or refused because the end
/// had begun (`AlreadyEnding`, `AlreadyEnded`), never for another reason; both ends agree that
/// the interpreter is ending: when `end_begins` returns (either one) it is `Ending` or `Ended`,
/// never `Alive` again; neither `end_begins` detaches (nothing to wait for) or counts a guard;
/// afterwards it is `Ended` and a new guard is refused.
fn end_begins_vs_end(seeds: Seeds) -> impl Fn() + Sync + Send + 'static {
    move || {
        let reg = Arc::new(Registry::with_seeds(seeds.clone()));
        let key = reg.observe(InterpreterId(1), HANDLE).key;
        let begins = move |reg: &Registry, who: &str| {
            let own = reg.end_begins(key, &holder(who), |_| {
                panic!("end_begins ({who}) detached to wait with no guard held")
            });
            assert_eq!(own, 0, "end_begins ({who}) counted a guard nobody holds");
            let status = reg.status(key);
            assert!(
                matches!(status, Some(Status::Ending | Status::Ended)),
                "end_begins ({who}) returned with {key} {status:?}"
            );
        };
        let toolkit = {
            let reg = reg.clone();
            thread::spawn(move || match reg.end(key, &holder("toolkit"), None) {
                Ok(()) => {
                    // The worker's Py_EndInterpreter runs the atexit hook.
                    begins(&reg, "worker");
                    reg.ended(key);
                }
                Err(EndRefused::AlreadyEnding(_) | EndRefused::AlreadyEnded(_)) => {}
                Err(e) => panic!("unexpected refusal: {e}"),
            })
        };
        let python = {
            let reg = reg.clone();
            thread::spawn(move || {
                begins(&reg, "python");
                reg.ended(key);
            })
        };
        toolkit.join().unwrap();
        python.join().unwrap();
        assert_eq!(reg.status(key), Some(Status::Ended));
        assert_eq!(reg.attach(key, holder("late")), Err(AttachRefused::Ended(key)));
    }
}

#[test]
fn registry_end_begins_vs_end() {
    check("registry_end_begins_vs_end", Exhaustive, end_begins_vs_end(Seeds::none()));
}
