//! The scenarios: one per case of the catalogue, each written once, generic over the strategy,
//! and run in a child process. `A` is the owner interpreter, `B` the other one; both are made in
//! the cell's setting. A scenario reports what the strategy refused, and observes directly what
//! went through (probe methods and finalisers that record the interpreter they ran in, object
//! addresses compared across interpreters, counts).

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use interp_tests::raw_switch::{interpreter_by_id, switched_into};
use interp_tests::{Rendezvous, FREE_THREADED};
use interpsafe::hazard::{Case, Form, Hazard};
use interpsafe::interpreter::runtime::pending_decrefs;
use interpsafe::type_object::TypeSpec;
use interpsafe::{current_interpreter, Error, InterpreterKey, Strategy};
use pyo3_ffi as ffi;

use super::world::{keep, ping, take, take_error, type_addr, utf8, within, Obs, World};

/// Runs `case` against `S` in `w` and returns what it saw.
pub fn run<S: Strategy>(case: Case, w: &mut World) -> Obs {
    match (case.hazard, case.form) {
        (Hazard::H1, None) => h1::<S>(w),
        (Hazard::H1, Some(Form::Kept)) => h1_kept::<S>(w),
        (Hazard::H2, None) => h2::<S>(w, Drop2::InB),
        (Hazard::H2, Some(Form::Kept)) => h2::<S>(w, Drop2::KeptInB),
        (Hazard::H2, Some(Form::Unattached)) => h2::<S>(w, Drop2::Unattached),
        (Hazard::H3, None) => h3::<S>(w),
        (Hazard::H4, None) => h4::<S>(w),
        (Hazard::H5, None) => h5::<S>(w),
        (Hazard::H6, None) => h6::<S>(w, false),
        (Hazard::H6, Some(Form::Attach)) => h6::<S>(w, true),
        (Hazard::H7, None) => h7::<S>(w),
        (Hazard::H8, None) => h8::<S>(w),
        #[cfg(not(Py_GIL_DISABLED))]
        (Hazard::H8, Some(Form::Payload)) => h8_payload::<S>(w),
        (Hazard::H9, Some(Form::Threads)) => h9::<S>(w, false),
        (Hazard::H9, Some(Form::Interpreters)) => h9::<S>(w, true),
        (Hazard::H10, None) => h10::<S>(w),
        (Hazard::H12, None) => h12::<S>(w),
        (Hazard::H13, Some(Form::Once)) => h13_once::<S>(w),
        (Hazard::H13, Some(Form::Store)) => h13_store::<S>(w),
        (Hazard::H13, Some(Form::Mixed)) => h13_mixed::<S>(w),
        (Hazard::H14, None) => h14::<S>(w),
        (Hazard::H14, Some(Form::Elsewhere)) => h14_elsewhere::<S>(w),
        (Hazard::H14, Some(Form::Running)) => h14_running::<S>(w),
        (Hazard::H15, None) => h15::<S>(w),
        (Hazard::H16, Some(Form::Forget)) => h16_forget::<S>(w),
        (Hazard::H16, Some(Form::Panic)) => h16_panic::<S>(w),
        (Hazard::H16, Some(Form::Tls)) => h16_tls::<S>(w),
        (Hazard::H16, Some(Form::Del)) => h16_del::<S>(w),
        _ => panic!("{} has no runtime scenario on this build (a compile-time cell)", case.id()),
    }
}

/// Whether the scenario keeps objects in once-cells, which are never released (so its probes
/// are never finalised and a debug build counts the references as leaked).
pub fn uses_once_cells(case: Case) -> bool {
    matches!(
        case.hazard,
        Hazard::H4
            | Hazard::H5
            | Hazard::H9
            | Hazard::H10
            | Hazard::H12
            | Hazard::H13
            | Hazard::H16
    )
}

/// A once-cell that is never dropped: dropping the baseline's cell off-interpreter is itself a
/// hazard, and a static lives as long as the process anyway.
fn leaked_cell<S: Strategy>() -> &'static S::Once {
    Box::leak(Box::default())
}

/// Brings a stored handle of `owner` into the scope and binds it; if the strategy lets it
/// through, uses it (the probe's method records where it ran). Returns the handle, stored again,
/// if the strategy gave it back.
fn bring_in<'s, S: Strategy>(
    s: &S::Scope<'s>,
    stored: S::Stored,
    owner: i64,
    obs: &mut Obs,
) -> Option<S::Stored> {
    match S::load(s, stored) {
        Err(e) => {
            obs.refused(&e, owner);
            None
        }
        Ok(h) => {
            match S::bind(s, &h) {
                Err(e) => obs.refused(&e, owner),
                Ok(r) => {
                    obs.anomaly(format!(
                        "accepted: {} bound a handle of interpreter {owner}",
                        S::key(s).id
                    ));
                    if let Err(e) = ping::<S>(r) {
                        obs.anomaly(format!("use-failed: calling the foreign probe raised {e}"));
                    }
                }
            }
            Some(S::store(s, h))
        }
    }
}

/// Releases a stored handle in its owner `a` (where it belongs).
fn go_home<S: Strategy>(a: InterpreterKey, back: Option<S::Stored>, obs: &mut Obs) {
    if let Some(stored) = back {
        within(a, |at| {
            S::enter(at, |s| match S::load(s, stored) {
                Ok(h) => drop(h),
                Err(e) => obs.note(format!("could not load it back into its owner: {e}")),
            })
        });
    }
}

/// H1: a stored handle made in A, loaded and bound in B.
fn h1<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let stored = within(a, |at| S::enter(at, |s| S::store(s, probes.make::<S>(s).0)));
    let back = within(b, |at| S::enter(at, |s| bring_in::<S>(s, stored, a.id.0, &mut obs)));
    go_home::<S>(a, back, &mut obs);
    obs
}

/// H1.kept: the thread keeps a handle made in A and binds it after attaching to B.
fn h1_kept<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    within(a, |at| S::enter(at, |s| keep::<S>(probes.make::<S>(s).0)));
    within(b, |at| {
        S::enter(at, |s| {
            let h = take::<S>(s);
            match S::bind(s, &h) {
                Err(e) => obs.refused(&e, a.id.0),
                Ok(r) => {
                    obs.anomaly(format!("accepted: {} bound a kept handle of {}", b.id, a.id));
                    if let Err(e) = ping::<S>(r) {
                        obs.anomaly(format!("use-failed: calling the foreign probe raised {e}"));
                    }
                }
            }
            keep::<S>(h);
        })
    });
    within(a, |at| S::enter(at, |s| drop(take::<S>(s))));
    obs
}

/// Where H2 drops the handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop2 {
    /// The stored form, while attached to B.
    InB,
    /// A handle the thread kept, while attached to B.
    KeptInB,
    /// The stored form, with no thread attached; B attaches next.
    Unattached,
}

/// H2: a handle of A dropped in B, or with nothing attached.
fn h2<S: Strategy>(w: &mut World, how: Drop2) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let (stored, tag) = within(a, |at| {
        S::enter(at, |s| {
            let (h, tag) = probes.make::<S>(s);
            if how == Drop2::KeptInB {
                keep::<S>(h);
                (None, tag)
            } else {
                (Some(S::store(s, h)), tag)
            }
        })
    });
    match how {
        Drop2::InB => {
            within(b, |_| drop(stored));
            // B's code attaches again before the owner does: where a process-wide pool (PyO3's)
            // would release what the drop deferred.
            within(b, |at| S::enter(at, |_| ()));
        }
        Drop2::KeptInB => within(b, |at| S::enter(at, |s| drop(take::<S>(s)))),
        Drop2::Unattached => {
            drop(stored);
            // Whoever attaches next: B (entering a scope, where the baseline drains PyO3's pool).
            within(b, |at| S::enter(at, |_| ()));
        }
    }
    let pending = pending_decrefs(a);
    // The owner attaches again (draining what was deferred for it).
    within(a, |at| S::enter(at, |_| ()));
    match w.probes.finalised_in(tag) {
        Some(i) if i == a.id.0 => obs.safe(format!(
            "deferred: released in its owner {} when it attached next ({pending} queued)",
            a.id
        )),
        Some(_) => {} // reported by the probe check
        None => {
            obs.safe(format!("not-released: not released in {}", b.id));
            obs.note("the probe was not finalised before the teardown");
        }
    }
    obs
}

/// H3: a stored handle loaded, bound and dropped in B after its owner A ended.
fn h3<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let stored = within(a, |at| S::enter(at, |s| S::store(s, probes.make::<S>(s).0)));
    w.end_a();
    obs.note(format!("{} ended", a.id));
    within(b, |at| {
        S::enter(at, |s| {
            let back = bring_in::<S>(s, stored, a.id.0, &mut obs);
            // Nowhere to take it home to: dropped here.
            drop(back);
        })
    });
    obs
}

/// H4: a once-cell filled in A, read in B.
fn h4<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let cell = leaked_cell::<S>();
    let read = |key: InterpreterKey| {
        within(key, |at| {
            S::enter(at, |s| {
                let mut ran = false;
                let r = S::once(cell, s, |s| {
                    ran = true;
                    Ok(probes.make::<S>(s).0)
                })
                .expect("once-cell");
                let _ = ping::<S>(r);
                (S::as_obj(r).addr(), ran)
            })
        })
    };
    let (in_a, _) = read(a);
    let (in_b, ran_in_b) = read(b);
    if in_a == in_b {
        obs.anomaly(format!(
            "wrong-object: {}'s read of the once-cell returned {}'s object",
            b.id, a.id
        ));
    } else if ran_in_b {
        obs.safe(format!("per-interpreter: {} initialised its own object", b.id));
    }
    obs
}

/// H5: a heap type kept in a once-cell by A, instantiated in B.
fn h5<S: Strategy>(w: &mut World) -> Obs {
    static SPEC: TypeSpec = TypeSpec { name: c"interpsafe_hazards.H5Type" };
    let (a, b) = (w.a(), w.b());
    let mut obs = Obs::default();
    let cell = leaked_cell::<S>();
    let make = |key: InterpreterKey| {
        within(key, |at| {
            S::enter(at, |s| {
                let ty = SPEC.get::<S>(cell, s).expect("type object");
                let obj = TypeSpec::instantiate::<S>(s, ty).expect("instantiate");
                let instance_type = type_addr::<S>(S::bind(s, &obj).expect("bind own object"));
                (S::as_obj(ty).addr(), instance_type)
            })
        })
    };
    let (ty_a, _) = make(a);
    let (ty_b, instance_type_b) = make(b);
    if ty_a == ty_b {
        obs.anomaly(format!("wrong-object: {} was handed {}'s type object", b.id, a.id));
    }
    if instance_type_b == ty_a {
        obs.anomaly(format!("wrong-object: {} made an instance of {}'s type", b.id, a.id));
    }
    if obs.anomalies.is_empty() {
        obs.safe(format!("per-interpreter: {} made and used its own type", b.id));
    }
    obs
}

/// H6: a handle sent from A to a foreign Rust thread, used in a callback. `to_owner` false: the
/// callback attaches the way PyO3 does (`Python::attach`, i.e. `PyGILState_Ensure`); true: with
/// `interpsafe::attach` to the owner.
fn h6<S: Strategy>(w: &mut World, to_owner: bool) -> Obs {
    let a = w.a();
    let probes = &w.probes;
    let sent = within(a, |at| S::enter(at, |s| S::send(s, probes.make::<S>(s).0)));
    let (landed, back, mut obs) = std::thread::scope(|sc| {
        sc.spawn(move || {
            let callback = move |here: InterpreterKey| {
                let mut obs = Obs::default();
                let back = within(here, |at| {
                    S::enter(at, |s| match S::receive(s, sent) {
                        Err(e) => {
                            obs.refused(&e, a.id.0);
                            None
                        }
                        Ok(h) => {
                            match S::bind(s, &h) {
                                Err(e) => obs.refused(&e, a.id.0),
                                Ok(r) => {
                                    if here != a {
                                        obs.anomaly(format!(
                                            "accepted: the callback bound {}'s handle in {}",
                                            a.id, here.id
                                        ));
                                    }
                                    if let Err(e) = ping::<S>(r) {
                                        obs.anomaly(format!("use-failed: the probe raised {e}"));
                                    }
                                }
                            }
                            Some(S::store(s, h))
                        }
                    })
                });
                (here, back, obs)
            };
            if to_owner {
                callback(a)
            } else {
                pyo3::Python::attach(|_py| {
                    callback(current_interpreter().expect("PyGILState_Ensure attached this thread"))
                })
            }
        })
        .join()
        .expect("callback thread")
    });
    if landed == a {
        obs.safe(format!(
            "owner: the callback attached to the owner {}, bound and used the handle there",
            a.id
        ));
    } else {
        obs.note(format!(
            "PyGILState_Ensure (pyo3::Python::attach) on a fresh thread landed in {}, not the owner {}",
            landed.id, a.id
        ));
    }
    go_home::<S>(a, back, &mut obs);
    obs
}

/// Collects, in A, the objects the runtime shares between interpreters that are immortal there:
/// the singletons, small ints, empty and one-character strings and bytes, and every static
/// builtin type (`_Py_TPFLAGS_STATIC_BUILTIN`, bit 1) reachable from `object`.
const H7_COLLECT: &CStr = c"def _h7_collect():
    seen = {}
    for o in (None, True, False, Ellipsis, NotImplemented, (), '', b''):
        seen.setdefault(id(o), o)
    for i in range(-5, 257):
        seen.setdefault(id(i), i)
    for i in range(256):
        c, b = chr(i), bytes([i])
        seen.setdefault(id(c), c)
        seen.setdefault(id(b), b)
    stack, visited = [object], set()
    while stack:
        t = stack.pop()
        if id(t) in visited:
            continue
        visited.add(id(t))
        if t.__flags__ & 2:
            seen.setdefault(id(t), t)
        stack.extend(type.__subclasses__(t))
    everything = list(seen.values())
    return len(everything), tuple(o for o in everything if sys.getrefcount(o) >= 2**30)
h7_candidates, h7_shared = _h7_collect()
h7_names = '\\x1f'.join(repr(o)[:60] for o in h7_shared)
";

/// H7: the runtime's immortal shared objects, made in A, used in B: none may be flagged. A's own
/// `object()` is brought along as a control.
fn h7<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let mut obs = Obs::default();
    let (shared, control, candidates, names) = within(a, |at| {
        at.exec(H7_COLLECT).expect("collect the shared set");
        let candidates: usize = at.eval(c"h7_candidates").unwrap().parse().unwrap();
        let names: Vec<String> =
            at.eval(c"h7_names").unwrap().split('\u{1f}').map(str::to_string).collect();
        S::enter(at, |s| {
            let tuple = S::eval(s, c"h7_shared").expect("h7_shared");
            let t = S::as_obj(S::bind(s, &tuple).expect("bind own tuple")).as_ptr();
            // SAFETY: attached to A, which owns the tuple; each item is borrowed from it and
            // increfed into a new reference handed to the strategy.
            let shared: Vec<S::Stored> = unsafe {
                (0..ffi::PyTuple_Size(t))
                    .map(|i| {
                        let item = ffi::PyTuple_GetItem(t, i);
                        ffi::Py_INCREF(item);
                        S::store(s, S::adopt(s, NonNull::new(item).expect("tuple item")))
                    })
                    .collect()
            };
            let control = S::store(s, S::eval(s, c"object()").expect("control"));
            (shared, control, candidates, names)
        })
    });
    let n = shared.len();
    let (flagged, control_back) = within(b, |at| {
        S::enter(at, |s| {
            let mut flagged: Vec<(usize, String)> = Vec::new();
            for (i, stored) in shared.into_iter().enumerate() {
                match S::load(s, stored) {
                    Err(e) => flagged.push((i, e.to_string())),
                    Ok(h) => {
                        if let Err(e) = S::bind(s, &h) {
                            flagged.push((i, e.to_string()));
                        }
                        // An immortal object: releasing it anywhere changes nothing.
                        drop(h);
                    }
                }
            }
            let control_back = match S::load(s, control) {
                Err(e) => {
                    obs.note(format!("control: A's own object() was refused in B ({e})"));
                    None
                }
                Ok(h) => {
                    match S::bind(s, &h) {
                        Err(e) => {
                            obs.note(format!("control: A's own object() was refused in B ({e})"))
                        }
                        Ok(_) => obs.note("control: A's own object() was accepted in B"),
                    }
                    Some(S::store(s, h))
                }
            };
            (flagged, control_back)
        })
    });
    go_home::<S>(a, control_back, &mut obs);
    match flagged.first() {
        None => obs.safe(format!(
            "no-false-positive: 0 of {n} immortal runtime-shared objects flagged ({candidates} candidates)"
        )),
        Some((i, message)) => {
            obs.refused = Some(format!(
                "{message} [false positive on {}; {} of {n} shared objects flagged]",
                names.get(*i).map(String::as_str).unwrap_or("?"),
                flagged.len()
            ));
        }
    }
    obs
}

/// `obj.n = obj.n + 1` through the C API, with no critical section.
///
/// # Safety
/// Attached; `obj` is live and has an int attribute `n`.
unsafe fn increment(obj: *mut ffi::PyObject) {
    // SAFETY: caller's contract; every new reference is released.
    unsafe {
        let v = ffi::PyObject_GetAttrString(obj, c"n".as_ptr());
        assert!(!v.is_null(), "{}", take_error());
        let one = ffi::PyLong_FromLong(1);
        let sum = ffi::PyNumber_Add(v, one);
        assert!(!sum.is_null(), "{}", take_error());
        assert_eq!(ffi::PyObject_SetAttrString(obj, c"n".as_ptr(), sum), 0, "{}", take_error());
        ffi::Py_DECREF(sum);
        ffi::Py_DECREF(one);
        ffi::Py_DECREF(v);
    }
}

/// H8: two threads attached to A read-modify-write one object's attribute through their handles
/// (one sent to each thread by the strategy's transfer).
fn h8<S: Strategy>(w: &mut World) -> Obs {
    // Each thread increments at least this often, and until a shared deadline, so that on a
    // loaded machine the two still overlap (on a free-threaded build); a GIL build serialises
    // them whatever happens, so one round says so. Free-threaded rounds repeat (up to 20) until
    // an update is lost.
    const AT_LEAST: i64 = 20_000;
    const WINDOW: Duration = Duration::from_millis(100);
    let a = w.a();
    let mut obs = Obs::default();
    let tag = w.probes.tag(a.id.0);
    let setup = CString::new(format!("h8 = Probe({tag})")).unwrap();
    within(a, |at| at.exec(&setup).unwrap());
    let rounds = if FREE_THREADED { 20 } else { 1 };
    let (mut total, mut lost) = (0, 0);
    for _ in 0..rounds {
        within(a, |at| at.exec(c"h8.n = 0").unwrap());
        let sent = within(a, |at| {
            S::enter(at, |s| {
                let h = S::eval(s, c"h8").unwrap();
                let c = S::clone_handle(s, &h).unwrap();
                [S::send(s, h), S::send(s, c)]
            })
        });
        let meet = &Rendezvous::new(2);
        let done: Vec<(S::Stored, i64)> = std::thread::scope(|sc| {
            let threads: Vec<_> = sent
                .into_iter()
                .map(|sent| {
                    sc.spawn(move || {
                        meet.meet(Duration::from_secs(30));
                        let deadline = Instant::now() + WINDOW;
                        within(a, |at| {
                            S::enter(at, |s| {
                                let h = S::receive(s, sent).expect("receive in the owner");
                                let r = S::bind(s, &h).expect("bind in the owner");
                                let mut count = 0;
                                while count < AT_LEAST || Instant::now() < deadline {
                                    // SAFETY: attached to A, which owns `h8`; it has `n`.
                                    unsafe { increment(S::as_obj(r).as_ptr()) };
                                    count += 1;
                                }
                                (S::store(s, h), count)
                            })
                        })
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("H8 thread")).collect()
        });
        let increments: i64 = done.iter().map(|d| d.1).sum();
        within(a, |_| drop(done));
        let n: i64 = within(a, |at| at.eval(c"h8.n").unwrap().parse().unwrap());
        total += increments;
        lost += increments - n;
        if lost > 0 {
            break;
        }
    }
    if lost > 0 {
        obs.anomaly(format!(
            "lost-updates: {lost} of {total} increments lost (two threads, one object, no critical \
             section)"
        ));
    } else {
        obs.safe(format!("serialised: 0 of {total} increments lost"));
    }
    obs
}

/// H8.payload (GIL builds; on a free-threaded build it does not compile): two threads attached
/// to A borrow a pyclass-like payload holding a `Cell` and increment it; a thread attached to B
/// tries too.
#[cfg(not(Py_GIL_DISABLED))]
fn h8_payload<S: Strategy>(w: &mut World) -> Obs {
    use interpsafe::payload::PyClassPayload;
    const PER_THREAD: u64 = 20_000;
    let _ = S::NAME; // the payload is the same under every strategy
    let (a, b) = (w.a(), w.b());
    let mut obs = Obs::default();
    let payload = within(a, |at| PyClassPayload::new(at, std::cell::Cell::new(0_u64)));
    let meet = &Rendezvous::new(2);
    let payload_ref = &payload;
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(move || {
                meet.meet(Duration::from_secs(30));
                within(a, |at| {
                    for _ in 0..PER_THREAD {
                        let data = payload_ref.try_borrow(at).expect("borrow in the owner");
                        data.set(data.get() + 1);
                    }
                })
            });
        }
    });
    match within(b, |at| payload_ref.try_borrow(at).map(|_| ()).map_err(|e| e.to_string())) {
        Err(e) => obs.note(format!("a thread attached to B was refused: {e}")),
        Ok(()) => obs.anomaly("accepted: a thread attached to B borrowed A's payload"),
    }
    let n = payload.into_inner().get();
    if n == 2 * PER_THREAD {
        obs.safe(format!("serialised: {n} of {} increments, none lost", 2 * PER_THREAD));
    } else {
        obs.anomaly(format!(
            "lost-updates: {} of {} increments lost",
            2 * PER_THREAD - n,
            2 * PER_THREAD
        ));
    }
    obs
}

/// H9: one once-cell raced by two threads, both attached to A (`two_interpreters` false), or one
/// attached to A and one to B. Each initialiser sleeps (releasing the GIL) so that they overlap.
fn h9<S: Strategy>(w: &mut World, two_interpreters: bool) -> Obs {
    let a = w.a();
    let b = if two_interpreters { w.b() } else { a };
    let probes = &w.probes;
    let mut obs = Obs::default();
    let cell = leaked_cell::<S>();
    let meet = &Rendezvous::new(2);
    let results: Vec<(usize, bool)> = std::thread::scope(|sc| {
        let threads: Vec<_> = [a, b]
            .into_iter()
            .map(|key| {
                sc.spawn(move || {
                    meet.meet(Duration::from_secs(30));
                    within(key, |at| {
                        S::enter(at, |s| {
                            let mut ran = false;
                            let r = S::once(cell, s, |s| {
                                ran = true;
                                Ok(probes.make_with::<S>(s, "__import__('time').sleep(0.05)").0)
                            })
                            .expect("once-cell");
                            let _ = ping::<S>(r);
                            (S::as_obj(r).addr(), ran)
                        })
                    })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("H9 thread")).collect()
    });
    let ran = results.iter().filter(|r| r.1).count();
    let same = results[0].0 == results[1].0;
    match (two_interpreters, same) {
        (false, true) => obs.safe(format!("one-winner: both threads got one object ({ran} initialiser(s) ran)")),
        (false, false) => obs.anomaly("wrong-object: two threads of one interpreter got different objects"),
        (true, true) => obs.anomaly(format!(
            "wrong-object: {} and {} got the same object from the once-cell ({ran} initialiser(s) ran)",
            a.id, b.id
        )),
        (true, false) => obs.safe("per-interpreter: each interpreter initialised its own object"),
    }
    obs
}

/// A new exception class, `interpsafe_hazards.H10Error(RuntimeError)`, in the scope's
/// interpreter.
fn new_exception<'s, S: Strategy>(s: &S::Scope<'s>) -> Result<S::Handle<'s>, Error> {
    // SAFETY: a scope exists, so the thread is attached; PyErr_NewException returns a new
    // reference (adopted by the strategy, owned by this interpreter) or NULL with an error set.
    unsafe {
        let cls = ffi::PyErr_NewException(
            c"interpsafe_hazards.H10Error".as_ptr(),
            ffi::PyExc_RuntimeError,
            std::ptr::null_mut(),
        );
        match NonNull::new(cls) {
            Some(cls) => Ok(S::adopt(s, cls)),
            None => Err(Error::Python { interpreter: S::key(s), message: take_error() }),
        }
    }
}

/// H10: an exception class kept in a once-cell by A, raised in B.
fn h10<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let mut obs = Obs::default();
    let cell = leaked_cell::<S>();
    let raise = |key: InterpreterKey| {
        within(key, |at| {
            S::enter(at, |s| {
                let cls = S::once(cell, s, |s| new_exception::<S>(s)).expect("exception class");
                let cls = S::as_obj(cls).as_ptr();
                // SAFETY: attached; `cls` is the class the cell handed out; the raised exception
                // is taken back at once and released.
                unsafe {
                    ffi::PyErr_SetString(cls, c"raised by the hazard suite".as_ptr());
                    let exc = ffi::PyErr_GetRaisedException();
                    let raised_type = ffi::Py_TYPE(exc) as usize;
                    ffi::Py_DECREF(exc);
                    (cls as usize, raised_type)
                }
            })
        })
    };
    let (class_a, _) = raise(a);
    let (class_b, raised_in_b) = raise(b);
    if class_a == class_b {
        obs.anomaly(format!("wrong-object: {} was handed {}'s exception class", b.id, a.id));
    }
    if raised_in_b == class_a {
        obs.anomaly(format!("wrong-object: {} raised an exception of {}'s class", b.id, a.id));
    }
    if obs.anomalies.is_empty() {
        obs.safe(format!("per-interpreter: {} raised its own class", b.id));
    }
    obs
}

/// The interned string of H12, built at run time so that no code object holds it as a constant.
const H12_INTERN: &CStr = c"__import__('sys').intern(''.join(['interpsafe_h12_', 'probe']))";

/// H12: an interned-string static (a once-cell) filled in A, used in B, and used in B again
/// after A ended.
fn h12<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let mut obs = Obs::default();
    let cell = leaked_cell::<S>();
    let (in_a, refcount_a) = within(a, |at| {
        let refcount = at.eval(
            c"__import__('sys').getrefcount(__import__('sys').intern('interpsafe_h12_probe'))",
        );
        let addr = S::enter(at, |s| {
            S::as_obj(S::once(cell, s, |s| S::eval(s, H12_INTERN)).expect("intern")).addr()
        });
        (addr, refcount.unwrap_or_default())
    });
    let immortal = refcount_a.parse::<i64>().map(|r| r >= 1 << 30).unwrap_or(false);
    obs.note(format!(
        "the interned string is {} in A (sys.getrefcount {refcount_a})",
        if immortal { "immortal" } else { "mortal" }
    ));
    // Compares the static with B's own interned string of the same text.
    let use_in_b = |obs: &mut Obs, when: &str| {
        within(b, |at| {
            S::enter(at, |s| {
                let st = S::once(cell, s, |s| S::eval(s, H12_INTERN)).expect("intern");
                let own = S::eval(s, H12_INTERN).expect("intern in B");
                let own_ref = S::bind(s, &own).expect("bind own");
                let (st_addr, own_addr) = (S::as_obj(st).addr(), S::as_obj(own_ref).addr());
                // SAFETY: attached to B; `own` is B's live str. The static is whatever the
                // strategy's cell hands out: reading it is the hazard under observation.
                let (equal, text) = unsafe {
                    let c =
                        ffi::PyUnicode_Compare(S::as_obj(st).as_ptr(), S::as_obj(own_ref).as_ptr());
                    if !ffi::PyErr_Occurred().is_null() {
                        (false, take_error())
                    } else {
                        (c == 0, utf8(S::as_obj(own_ref).as_ptr()))
                    }
                };
                if st_addr != own_addr {
                    obs.anomaly(format!(
                        "wrong-object: {when}, {}'s interned-string static holds another interpreter's \
                         string, not its own interned {text:?}",
                        b.id
                    ));
                }
                if !equal {
                    obs.anomaly(format!(
                        "wrong-result: {when}, the static no longer equals {text:?}"
                    ));
                }
                st_addr
            })
        })
    };
    let in_b = use_in_b(&mut obs, "while A is alive");
    w.end_a();
    let _ = use_in_b(&mut obs, "after A ended");
    if obs.anomalies.is_empty() {
        if in_a == in_b {
            obs.safe(format!(
                "shared: {}'s own interned string is {}'s object (one interned-string table)",
                b.id, a.id
            ));
        } else {
            obs.safe(format!("per-interpreter: {} interned its own string", b.id));
        }
    }
    obs
}

/// H13.once: a once-cell read in B is filled by an initialiser that returns a handle made in A
/// (loaded in B from A's stored form). The cell keeps no owner, so the door is the check.
fn h13_once<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let cell = leaked_cell::<S>();
    let stored = within(a, |at| S::enter(at, |s| S::store(s, probes.make::<S>(s).0)));
    within(b, |at| {
        S::enter(at, |s| match S::once(cell, s, |s| S::load(s, stored)) {
            Err(e) => obs.refused(&e, a.id.0),
            Ok(r) => {
                obs.anomaly(format!(
                    "accepted: {}'s once-cell was filled with {}'s object",
                    b.id, a.id
                ));
                if let Err(e) = ping::<S>(r) {
                    obs.anomaly(format!("use-failed: calling the foreign probe raised {e}"));
                }
            }
        })
    });
    obs
}

/// H13.store: the thread keeps a handle made in A (a thread-local: the handle is `'static`),
/// attaches to B, stores it from a scope of B, and brings the stored form in there.
fn h13_store<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    within(a, |at| S::enter(at, |s| keep::<S>(probes.make::<S>(s).0)));
    let back = within(b, |at| {
        S::enter(at, |s| {
            let stored = S::store(s, take::<S>(s));
            bring_in::<S>(s, stored, a.id.0, &mut obs)
        })
    });
    go_home::<S>(a, back, &mut obs);
    obs
}

/// H13.mixed: a handle made in A and stored by another checked strategy (affine, or tagged for
/// affine itself), then loaded and bound by `S` in B. The checked strategies share one stored
/// form, so each must check what another produced.
fn h13_mixed<S: Strategy>(w: &mut World) -> Obs {
    use interpsafe::strategy::{Affine, Tagged};
    use std::any::Any;
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let produced: Box<dyn Any + Send> = if S::NAME == Affine::NAME {
        Box::new(within(a, |at| {
            Tagged::enter(at, |s| Tagged::store(s, probes.make::<Tagged>(s).0))
        }))
    } else {
        Box::new(within(a, |at| {
            Affine::enter(at, |s| Affine::store(s, probes.make::<Affine>(s).0))
        }))
    };
    let stored = match produced.downcast::<S::Stored>() {
        Ok(stored) => *stored,
        Err(other) => {
            obs.safe(format!(
                "not-applicable: {}'s stored form is not the checked strategies' one",
                S::NAME
            ));
            // The other strategy's stored form goes home to A.
            within(a, move |_| drop(other));
            return obs;
        }
    };
    let back = within(b, |at| S::enter(at, |s| bring_in::<S>(s, stored, a.id.0, &mut obs)));
    go_home::<S>(a, back, &mut obs);
    obs
}

/// Runs `_interpreters.destroy(id)` in main; the Python exception as `Type: message` if any.
fn python_destroy(id: i64) -> Result<(), String> {
    let code = CString::new(format!(
        "def _hz_destroy(i):\n    try:\n        _interpreters.destroy(i)\n        return ''\n    \
         except Exception as e:\n        return type(e).__name__ + ': ' + str(e)\n_hz_err = _hz_destroy({id})"
    ))
    .unwrap();
    within(interpsafe::interpreter::main_interpreter(), |at| {
        at.exec(&code).expect("destroy helper");
        let err = at.eval(c"_hz_err").unwrap();
        if err.is_empty() {
            Ok(())
        } else {
            Err(err)
        }
    })
}

/// H14: the thread holds a guard on A and a stored handle of A, and destroys A from Python.
/// The end cannot wait for the thread's own guard; the guard and the handle must refuse after.
fn h14<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let stored = within(a, |at| S::enter(at, |s| S::store(s, probes.make::<S>(s).0)));
    let guard = interpsafe::InterpreterGuard::new(a).expect("guard");
    match python_destroy(a.id.0) {
        Err(refusal) => {
            obs.safe(format!("python-refused: _interpreters.destroy raised {refusal}"));
            drop(guard);
            go_home::<S>(a, Some(stored), &mut obs);
            return obs;
        }
        Ok(()) => w.ended_elsewhere_a(),
    }
    obs.note(format!("{} destroyed from Python", a.id));
    match guard.attach(|at| at.eval(c"1").is_ok()) {
        Err(Error::Attach(_)) => {}
        Err(e) => obs.anomaly(format!("unclear-error: the guard refused with {e}")),
        Ok(_) => obs.anomaly(format!("accepted: a guard attached to the destroyed {}", a.id)),
    }
    drop(guard);
    within(b, |at| S::enter(at, |s| drop(bring_in::<S>(s, stored, a.id.0, &mut obs))));
    obs
}

/// H14.elsewhere: another thread holds a guard on A while A is destroyed from Python. The guard
/// must refuse to attach once the end has begun (3.13 cannot make an end Python started wait
/// for an idle guard), or Python must be refused.
fn h14_elsewhere<S: Strategy>(w: &mut World) -> Obs {
    use interpsafe::interpreter::runtime::status;
    use interpsafe::protocol::Status;
    let a = w.a();
    let mut obs = Obs::default();
    let guard = interpsafe::InterpreterGuard::new(a).expect("guard");
    // Set once the destroy returned without waiting (refused, or a missing wait).
    let returned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let returned_seen = std::sync::Arc::clone(&returned);
    let holder = std::thread::spawn(move || {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let began = matches!(status(a), Some(Status::Ending | Status::Ended));
            let returned = returned_seen.load(std::sync::atomic::Ordering::SeqCst);
            if began {
                match guard.attach(|_| ()) {
                    Err(Error::Attach(_)) => {}
                    Err(e) => {
                        seen.push(format!("anomaly unclear-error: the guard refused with {e}"))
                    }
                    Ok(()) => seen.push(format!(
                        "anomaly accepted: a guard attached to {} after its end began",
                        a.id
                    )),
                }
                break;
            }
            if returned {
                seen.push("note the destroy returned with the interpreter alive".to_string());
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                seen.push("anomaly hang: the end neither began nor returned".to_string());
                break;
            }
            // Attach while the end has not begun: must work.
            if guard.attach(|_| ()).is_err()
                && !matches!(status(a), Some(Status::Ending | Status::Ended))
            {
                seen.push(format!("anomaly refused: a guard on the live {} refused", a.id));
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(guard);
        seen
    });
    let destroyed = python_destroy(a.id.0);
    returned.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = holder.join().expect("the holder thread");
    for line in seen {
        match line.split_once(' ') {
            Some(("anomaly", text)) => obs.anomaly(text),
            Some((_, text)) => obs.note(text),
            None => {}
        }
    }
    match destroyed {
        Ok(()) => {
            w.ended_elsewhere_a();
            obs.safe(format!(
                "refused: the guard held elsewhere refused to attach once {}'s end began",
                a.id
            ));
        }
        Err(refusal) => obs.safe(format!("python-refused: _interpreters.destroy raised {refusal}")),
    }
    let _ = S::NAME;
    obs
}

/// H14.running: another thread runs Python code in A through the toolkit while A is ended (the
/// toolkit's end for its subinterpreters, `_interpreters.destroy` for Python-created ones).
fn h14_running<S: Strategy>(w: &mut World) -> Obs {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;
    let a = w.a();
    let mut obs = Obs::default();
    // 0: not started; 1: running Python code in A; 2: finished.
    let state = Arc::new(AtomicU8::new(0));
    let runner = {
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            interpsafe::attach(a, |at| {
                state.store(1, Ordering::SeqCst);
                let r = at.exec(c"import time\ntime.sleep(0.2)\n_hz_ran = True");
                state.store(2, Ordering::SeqCst);
                r.is_ok()
            })
        })
    };
    while state.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    w.end_a();
    if state.load(Ordering::SeqCst) != 2 {
        obs.anomaly(format!("no-wait: {} ended while Python code still ran there", a.id));
    }
    match runner.join() {
        Ok(Ok(true)) => {
            obs.safe(format!("waited: the end of {} waited for the code running there", a.id))
        }
        Ok(other) => obs.anomaly(format!("the running code failed: {other:?}")),
        Err(_) => obs.anomaly("crash: the running thread panicked"),
    }
    let _ = S::NAME;
    obs
}

/// H15: under a scope of A, foreign C code switches the thread into B (a fresh thread state,
/// `PyEval_SaveThread` / `PyEval_RestoreThread`) and calls back into Rust, which binds A's
/// handle; then it switches back.
fn h15<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    within(a, |at| {
        S::enter(at, |s| {
            let (h, _) = probes.make::<S>(s);
            // SAFETY: attached to A; B is alive for the whole scenario.
            let interp_b = unsafe { interpreter_by_id(b.id.0) };
            assert!(!interp_b.is_null(), "B is not in CPython's list");
            // SAFETY: attached to A; B is alive for the whole scenario.
            unsafe {
                switched_into(interp_b, || match S::bind(s, &h) {
                    Err(e) => obs.refused(&e, a.id.0),
                    Ok(r) => {
                        obs.anomaly(format!(
                            "accepted: {}'s handle was bound while the thread was in {}",
                            a.id, b.id
                        ));
                        if let Err(e) = ping::<S>(r) {
                            obs.anomaly(format!(
                                "use-failed: calling the foreign probe raised {e}"
                            ));
                        }
                    }
                })
            }
            drop(h);
        })
    });
    obs
}

/// H16.forget: a handle of A, a clone and a stored form are forgotten, then A ends. Forgetting
/// leaks the references; nothing may be released anywhere (the probe is never finalised).
fn h16_forget<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let tag = within(a, |at| {
        S::enter(at, |s| {
            let (h, tag) = probes.make::<S>(s);
            let clone = S::clone_handle(s, &h).expect("clone");
            std::mem::forget(clone);
            std::mem::forget(S::store(s, h));
            tag
        })
    });
    within(b, |at| S::enter(at, |_| ()));
    w.end_a();
    match w.probes.finalised_in(tag) {
        None => obs.safe("leaked: the forgotten references were never released"),
        Some(i) => obs.anomaly(format!(
            "released: a forgotten handle's probe was finalised in interpreter {i}"
        )),
    }
    obs
}

/// H16.panic: a panic unwinds out of a scope of A and out of the attach, with a handle of A
/// alive; then a once-cell initialiser panics. The handle must be released in A, the thread
/// left detached, and the once-cell left empty and usable.
fn h16_panic<S: Strategy>(w: &mut World) -> Obs {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let a = w.a();
    let probes = &w.probes;
    let mut obs = Obs::default();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let tag = std::sync::atomic::AtomicI64::new(0);
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        interpsafe::attach(a, |at| {
            S::enter(at, |s| {
                let (h, t) = probes.make::<S>(s);
                tag.store(t, std::sync::atomic::Ordering::SeqCst);
                let _alive = h;
                panic!("unwinding through the scope and the attach");
            })
        })
    }));
    // SAFETY: PyThreadState_GetUnchecked may be called in any state.
    if unsafe { !ffi::PyThreadState_GetUnchecked().is_null() } {
        obs.anomaly("left-attached: the thread is still attached after the unwind");
    }
    let cell = leaked_cell::<S>();
    let first = within(a, |at| {
        S::enter(at, |s| {
            catch_unwind(AssertUnwindSafe(|| {
                let _ = S::once(cell, s, |_| panic!("a panicking once-cell initialiser"));
            }))
            .is_err()
        })
    });
    let second = within(a, |at| {
        S::enter(at, |s| S::once(cell, s, |s| Ok(probes.make::<S>(s).0)).map(|_| ()))
    });
    std::panic::set_hook(quiet);
    if unwound.is_ok() || !first {
        obs.anomaly("the panics did not unwind");
    }
    if let Err(e) = second {
        obs.anomaly(format!("poisoned: the once-cell refused after a panicking initialiser: {e}"));
    }
    match probes.finalised_in(tag.load(std::sync::atomic::Ordering::SeqCst)) {
        Some(i) if i == a.id.0 => obs.safe(format!(
            "unwound: the handle was released in its owner {} during the unwind",
            a.id
        )),
        Some(_) => {} // the probe check reports the wrong interpreter
        None => obs.anomaly("leaked: the unwind did not release the handle"),
    }
    obs
}

thread_local! {
    /// H16.tls: where a thread parks a stored handle until it exits.
    static PARKED_STORED: std::cell::RefCell<Option<Box<dyn std::any::Any>>> =
        const { std::cell::RefCell::new(None) };
}

/// H16.tls: a thread parks a stored handle of A in a thread-local and exits, unattached; the
/// thread-local's destructor drops it. B attaches next, then A: it must be released in A.
fn h16_tls<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    let tag = std::thread::scope(|sc| {
        sc.spawn(|| {
            let (stored, tag) = within(a, |at| {
                S::enter(at, |s| {
                    let (h, tag) = probes.make::<S>(s);
                    (S::store(s, h), tag)
                })
            });
            PARKED_STORED.with(|p| *p.borrow_mut() = Some(Box::new(stored)));
            tag
        })
        .join()
        .expect("the parking thread")
    });
    // Whoever attaches next: B (entering a scope, where the baseline drains PyO3's pool).
    within(b, |at| S::enter(at, |_| ()));
    within(a, |at| S::enter(at, |_| ()));
    match probes.finalised_in(tag) {
        Some(i) if i == a.id.0 => obs
            .safe(format!("deferred: the thread-local's drop was released in its owner {}", a.id)),
        Some(_) => {}
        None => obs.safe("leaked: the thread-local's drop was not released"),
    }
    obs
}

/// H16.del: a handle of A is dropped while attached to B (deferred), B attaches again, and the
/// handle is released when A next attaches; the object's `__del__` then re-enters toolkit code (`_interpsafe.interpreter_id`,
/// `_interpsafe.record`) in the middle of the toolkit's own release of the deferred queue.
fn h16_del<S: Strategy>(w: &mut World) -> Obs {
    let (a, b) = (w.a(), w.b());
    let probes = &w.probes;
    let mut obs = Obs::default();
    within(a, |at| {
        at.exec(c"class ReProbe(Probe):\n    def __del__(self, _i=_interpsafe.interpreter_id, _r=_interpsafe.record):\n        _i()\n        _r(self.tag, 1)\n")
            .expect("ReProbe")
    });
    let (stored, tag) = within(a, |at| {
        S::enter(at, |s| {
            let tag = probes.tag(a.id.0);
            let code = CString::new(format!("ReProbe({tag})")).unwrap();
            (S::store(s, S::eval(s, &code).expect("ReProbe")), tag)
        })
    });
    within(b, move |_| drop(stored));
    // B's code attaches again first, as in H2: a process-wide pool would release it there.
    within(b, |at| S::enter(at, |_| ()));
    within(a, |at| S::enter(at, |_| ()));
    match probes.finalised_in(tag) {
        Some(i) if i == a.id.0 => {
            obs.safe(format!("deferred: released in {} where __del__ re-entered the toolkit", a.id))
        }
        Some(_) => {}
        None => obs.safe("not-released: the drop was not released before the teardown"),
    }
    obs
}
