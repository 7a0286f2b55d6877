//! Every registered strategy against a real interpreter: the handle life cycle within one
//! interpreter, deferred drops, the cross-interpreter boundary as each design handles it, and
//! per-interpreter once-cells. Generic over the strategy; each runs once per registered one.

use std::ffi::CStr;
use std::sync::Arc;

use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::{decref_stats, pending_decrefs};
use interpsafe::strategy::{
    Affine, AffineHandle, Branded, BrandedHandle, Scoped, StockPyo3, Tagged, TaggedHandle,
    Unchecked, UncheckedHandle,
};
use interpsafe::{attach, for_each_strategy, Error, Isolation, Strategy, SubInterpreter};

/// `sys.getrefcount` of the `__main__` global `name`, read in the attached interpreter.
fn refcount(at: &interpsafe::Attached<'_>, name: &str) -> i64 {
    let expr = std::ffi::CString::new(format!("__import__('sys').getrefcount({name})")).unwrap();
    at.eval(&expr).unwrap().parse().unwrap()
}

fn life_cycle_in_one_interpreter<S: Strategy>() {
    let main = main_interpreter();
    attach(main, |at| {
        at.exec(c"probe_obj = object()\nprobe_list = []").unwrap();
        let before = refcount(at, "probe_obj");
        S::enter(at, |scope| {
            let h = S::eval(scope, c"probe_obj").unwrap();
            let c = S::clone_handle(scope, &h).unwrap();
            let r = S::bind(scope, &c).unwrap();
            let h2 = S::to_handle(scope, r);
            let list = S::eval(scope, c"probe_list").unwrap();
            let item = S::bind(scope, &h2).unwrap();
            interpsafe::ops::list_append::<S>(scope, S::bind(scope, &list).unwrap(), item).unwrap();
            let stored = S::store(scope, h);
            let h = S::load(scope, stored).unwrap();
            let sent = S::send(scope, h);
            let h = S::receive(scope, sent).unwrap();
            let cls =
                interpsafe::ops::getattr::<S>(scope, S::bind(scope, &h).unwrap(), c"__class__")
                    .unwrap();
            assert_eq!(
                S::as_obj(S::bind(scope, &cls).unwrap()).addr(),
                at.eval(c"id(object)").unwrap().parse::<usize>().unwrap(),
                "{}",
                S::NAME
            );
            drop((h, c, h2, list, cls));
        });
        at.exec(c"probe_list.clear()").unwrap();
        assert_eq!(refcount(at, "probe_obj"), before, "{}: refcount not restored", S::NAME);
    })
    .unwrap();
}

#[test]
fn every_strategy_round_trips_within_one_interpreter() {
    macro_rules! run {
        ($s:ty) => {
            life_cycle_in_one_interpreter::<$s>();
        };
    }
    for_each_strategy!(run);
}

/// What a strategy does when a handle made in one interpreter is brought into another.
#[derive(Debug, PartialEq)]
enum Crossing {
    /// `load` (or `receive`) refuses it: checked once at the boundary.
    RefusedAtLoad,
    /// `load` accepts it and `bind` refuses it.
    RefusedAtBind,
    /// Both accept it: undetected.
    Undetected,
}

/// Makes a handle in `a`, stores it, and brings it into `b` on the same thread.
fn crossing<S: Strategy>(a: &SubInterpreter, b: &SubInterpreter) -> (Crossing, Option<String>) {
    let stored = attach(a.key(), |at| {
        at.exec(c"cross = object()").unwrap();
        S::enter(at, |scope| S::store(scope, S::eval(scope, c"cross").unwrap()))
    })
    .unwrap();
    attach(b.key(), move |at| {
        S::enter(at, |scope| match S::load(scope, stored) {
            Err(e) => (Crossing::RefusedAtLoad, Some(e.to_string())),
            Ok(h) => {
                let outcome = match S::bind(scope, &h) {
                    Err(e) => (Crossing::RefusedAtBind, Some(e.to_string())),
                    Ok(_) => (Crossing::Undetected, None),
                };
                // An undetected handle must not be released here, in the wrong interpreter.
                if outcome.0 == Crossing::Undetected {
                    std::mem::forget(h);
                }
                outcome
            }
        })
    })
    .unwrap()
}

#[test]
fn the_cross_interpreter_boundary_per_strategy() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let expect = [
        (Unchecked::NAME, crossing::<Unchecked>(&a, &b), Crossing::Undetected),
        (StockPyo3::NAME, crossing::<StockPyo3>(&a, &b), Crossing::Undetected),
        (Tagged::NAME, crossing::<Tagged>(&a, &b), Crossing::RefusedAtBind),
        (Scoped::NAME, crossing::<Scoped>(&a, &b), Crossing::RefusedAtBind),
        (Branded::NAME, crossing::<Branded>(&a, &b), Crossing::RefusedAtLoad),
        (Affine::NAME, crossing::<Affine>(&a, &b), Crossing::RefusedAtLoad),
    ];
    for (name, (got, message), want) in expect {
        assert_eq!(got, want, "{name}");
        if let Some(message) = message {
            let (ia, ib) = (a.key().id.0, b.key().id.0);
            assert!(
                message.contains(&format!("interpreter {ia}"))
                    && message.contains(&format!("interpreter {ib}")),
                "{name}: the error must name both interpreters: {message}"
            );
        }
    }
}

#[test]
fn affine_handles_kept_by_a_thread_are_not_checked_in_the_next_interpreter() {
    // The design's blind spot: !Send proves "same thread", not "same interpreter".
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // An attach closure and its result must be Send, so `kept` can neither go in nor
            // come out; a thread-local stash is how real code keeps one across attachments.
            thread_local! {
                static STASH: std::cell::RefCell<Option<AffineHandle>> = const { std::cell::RefCell::new(None) };
            }
            attach(a.key(), |at| {
                at.exec(c"kept = object()").unwrap();
                let kept = Affine::enter(at, |scope| Affine::eval(scope, c"kept").unwrap());
                STASH.with(|s| *s.borrow_mut() = Some(kept));
            })
            .unwrap();
            let bound_in_b = attach(b.key(), |at| {
                Affine::enter(at, |scope| {
                    STASH.with(|s| {
                        let h = s.borrow_mut().take().unwrap();
                        let ok = Affine::bind(scope, &h).is_ok();
                        std::mem::forget(h); // never release it in the wrong interpreter here
                        ok
                    })
                })
            })
            .unwrap();
            assert!(bound_in_b, "affine unexpectedly caught a same-thread interpreter switch");
        });
    });
}

#[test]
fn drops_outside_the_owner_are_deferred_and_released_on_the_next_attach() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let (handle, before) = attach(a.key(), |at| {
        at.exec(c"deferred = object()").unwrap();
        let before = refcount(at, "deferred");
        (Tagged::enter(at, |scope| Tagged::eval(scope, c"deferred").unwrap()), before)
    })
    .unwrap();
    assert_eq!(handle.owner(), a.key());
    // Dropped on a thread attached to nothing: queued for its owner, not released here.
    drop(handle);
    assert_eq!(pending_decrefs(a.key()), 1);
    let after = attach(a.key(), |at| refcount(at, "deferred")).unwrap();
    assert_eq!(after, before, "the deferred decref was not released on attach");
    assert_eq!(pending_decrefs(a.key()), 0);
}

#[test]
fn drops_after_the_owner_ended_are_discarded_and_counted() {
    let mut a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let handle =
        a.run(|at| Tagged::enter(at, |scope| Tagged::eval(scope, c"object()").unwrap())).unwrap();
    a.end(None).unwrap();
    let discarded = decref_stats().discarded_total;
    drop(handle);
    assert_eq!(decref_stats().discarded_total, discarded + 1);
    let err = attach(main_interpreter(), |at| {
        Tagged::enter(at, |scope| {
            let h: TaggedHandle = a_dead_handle(scope);
            Tagged::bind(scope, &h).map(|_| ()).unwrap_err()
        })
    });
    drop(err);
}

/// A handle whose owner has ended: made in a fresh interpreter that is then ended.
fn a_dead_handle(_scope: &interpsafe::strategy::TaggedScope<'_>) -> TaggedHandle {
    let mut dead = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let h = dead
        .run(|at| Tagged::enter(at, |scope| Tagged::eval(scope, c"object()").unwrap()))
        .unwrap();
    dead.end(None).unwrap();
    h
}

#[test]
fn binding_a_handle_whose_owner_ended_says_so() {
    let mut dead = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let h = dead
        .run(|at| Tagged::enter(at, |scope| Tagged::eval(scope, c"object()").unwrap()))
        .unwrap();
    dead.end(None).unwrap();
    let err = attach(main_interpreter(), move |at| {
        Tagged::enter(at, |scope| Tagged::bind(scope, &h).map(|_| ()).unwrap_err())
    })
    .unwrap();
    assert!(matches!(err, Error::OwnerEnded { .. }), "{err}");
    assert!(err.to_string().contains("has ended"), "{err}");
}

fn once_cells_are_per_interpreter<S: Strategy>(per_interpreter: bool) {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let cell: Arc<S::Once> = Arc::new(Default::default());
    let fill = |key, expr: &'static CStr| {
        let cell = cell.clone();
        attach(key, move |at| {
            S::enter(at, |scope| {
                let mut ran = false;
                let addr = S::as_obj(
                    S::once(&cell, scope, |scope| {
                        ran = true;
                        S::eval(scope, expr)
                    })
                    .unwrap(),
                )
                .addr();
                (addr, ran)
            })
        })
        .unwrap()
    };
    let (in_a, ran_a) = fill(a.key(), c"object()");
    let (again_a, ran_again) = fill(a.key(), c"object()");
    let (in_b, ran_b) = fill(b.key(), c"object()");
    assert!(ran_a && !ran_again, "{}", S::NAME);
    assert_eq!(in_a, again_a, "{}", S::NAME);
    if per_interpreter {
        assert!(ran_b, "{}: interpreter b reused a's value", S::NAME);
        assert_ne!(in_a, in_b, "{}", S::NAME);
    } else {
        // The baseline's hazard (H4): b is handed a's object.
        assert!(!ran_b, "{}", S::NAME);
        assert_eq!(in_a, in_b, "{}", S::NAME);
        // Dropping the baseline's cell off-interpreter would queue a's object in the global
        // pool, to be released by whichever interpreter attaches next, after a has ended: the
        // double free of PyO3 #4570 (this test hit it before this line was added). Leak it.
        std::mem::forget(cell);
    }
}

#[test]
fn once_cells_are_per_interpreter_except_in_the_baseline() {
    once_cells_are_per_interpreter::<Unchecked>(false);
    once_cells_are_per_interpreter::<StockPyo3>(false);
    once_cells_are_per_interpreter::<Tagged>(true);
    once_cells_are_per_interpreter::<Scoped>(true);
    once_cells_are_per_interpreter::<Branded>(true);
    once_cells_are_per_interpreter::<Affine>(true);
}

#[test]
fn handle_sizes() {
    use interpsafe::strategy::handle_size;
    let mut sizes = vec![];
    macro_rules! collect {
        ($s:ty) => {
            sizes.push(handle_size::<$s>());
        };
    }
    for_each_strategy!(collect);
    for s in &sizes {
        // Every handle keeps the pointer niche: Option costs nothing.
        assert_eq!(s.option_size, s.size, "{s:?}");
        // Affine records the interpreter a handle was made in (for its stored form), so it is
        // a pointer plus a tag like tagged's, although bind and drop never read the tag.
        let limit = match s.strategy.as_str() {
            "unchecked" | "pyo3" | "branded" => 8,
            _ => 16,
        };
        assert!(s.size <= limit, "{s:?} exceeds {limit} bytes");
    }
    assert_eq!(std::mem::size_of::<AffineHandle>(), 16);
    assert_eq!(std::mem::size_of::<BrandedHandle<'static>>(), 8);
    assert_eq!(std::mem::size_of::<UncheckedHandle>(), 8);
    assert_eq!(std::mem::size_of::<TaggedHandle>(), 16);
}

/// Brings handles to `exprs`, made in `a`, into `b` through `S`; true where the bind succeeded.
fn usable_elsewhere<S: Strategy>(
    a: &SubInterpreter,
    b: &SubInterpreter,
    exprs: &[&'static CStr],
) -> Vec<bool> {
    let exprs: Vec<&'static CStr> = exprs.to_vec();
    let stored: Vec<S::Stored> = attach(a.key(), move |at| {
        S::enter(at, |scope| {
            exprs.iter().map(|e| S::store(scope, S::eval(scope, e).unwrap())).collect()
        })
    })
    .unwrap();
    attach(b.key(), move |at| {
        S::enter(at, |scope| {
            stored
                .into_iter()
                .map(|s| match S::load(scope, s) {
                    Ok(h) => S::bind(scope, &h).is_ok(),
                    Err(_) => false,
                })
                .collect()
        })
    })
    .unwrap()
}

#[test]
fn shared_static_objects_are_never_foreign_and_interned_strings_are() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let shared: &[&'static CStr] = &[
        c"None",
        c"True",
        c"False",
        c"...",
        c"NotImplemented",
        c"-5",
        c"256",
        c"()",
        c"''",
        c"b''",
        c"'a'",
        c"'\\xe9'",
        c"b'z'",
        c"int",
        c"ValueError",
        c"type",
    ];
    for (name, ok) in [
        (Tagged::NAME, usable_elsewhere::<Tagged>(&a, &b, shared)),
        (Scoped::NAME, usable_elsewhere::<Scoped>(&a, &b, shared)),
        (Branded::NAME, usable_elsewhere::<Branded>(&a, &b, shared)),
        (Affine::NAME, usable_elsewhere::<Affine>(&a, &b, shared)),
    ] {
        for (expr, ok) in shared.iter().zip(ok) {
            assert!(ok, "{name}: shared object {expr:?} reported as foreign");
        }
    }
    // Owned by a, even where immortal (interned strings on 3.13t): foreign in b.
    let owned: &[&'static CStr] =
        &[c"__import__('sys').intern('interpsafe_probe_name')", c"257", c"object()", c"'ab'"];
    for (name, ok) in [
        (Tagged::NAME, usable_elsewhere::<Tagged>(&a, &b, owned)),
        (Scoped::NAME, usable_elsewhere::<Scoped>(&a, &b, owned)),
        (Branded::NAME, usable_elsewhere::<Branded>(&a, &b, owned)),
        (Affine::NAME, usable_elsewhere::<Affine>(&a, &b, owned)),
    ] {
        for (expr, ok) in owned.iter().zip(ok) {
            assert!(!ok, "{name}: {expr:?} of interpreter a was accepted in b");
        }
    }
}

fn type_objects<S: Strategy>() -> (usize, usize, usize) {
    static SPEC: interpsafe::type_object::TypeSpec =
        interpsafe::type_object::TypeSpec { name: c"interpsafe_tests.Probe" };
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let cell: Arc<S::Once> = Arc::new(Default::default());
    let in_interp = |key| {
        let cell = cell.clone();
        attach(key, move |at| {
            S::enter(at, |scope| {
                let ty = SPEC.get::<S>(&cell, scope).unwrap();
                let ty_addr = S::as_obj(ty).addr();
                let obj = interpsafe::type_object::TypeSpec::instantiate::<S>(scope, ty).unwrap();
                let class = interpsafe::ops::getattr::<S>(
                    scope,
                    S::bind(scope, &obj).unwrap(),
                    c"__class__",
                )
                .unwrap();
                assert_eq!(S::as_obj(S::bind(scope, &class).unwrap()).addr(), ty_addr);
                ty_addr
            })
        })
        .unwrap()
    };
    let (ta, ta2) = (in_interp(a.key()), in_interp(a.key()));
    let tb = if !S::CHECKED {
        // Instantiating a's type in b is the hazard itself (H5); read its address only.
        let in_b = cell.clone();
        let tb = attach(b.key(), move |at| {
            S::enter(at, |scope| S::as_obj(SPEC.get::<S>(&in_b, scope).unwrap()).addr())
        })
        .unwrap();
        // Never drop the baseline's global cell off-interpreter (see the once-cell test).
        std::mem::forget(cell);
        tb
    } else {
        in_interp(b.key())
    };
    (ta, ta2, tb)
}

#[test]
fn type_objects_are_per_interpreter_except_in_the_baseline() {
    macro_rules! run {
        ($s:ty) => {{
            let (ta, ta2, tb) = type_objects::<$s>();
            assert_eq!(ta, ta2, "{}", <$s>::NAME);
            if !<$s>::CHECKED {
                assert_eq!(
                    ta,
                    tb,
                    "{}: the unchecked rows hand b the type object of a",
                    <$s>::NAME
                );
            } else {
                assert_ne!(ta, tb, "{}: b got a's type object", <$s>::NAME);
            }
        }};
    }
    for_each_strategy!(run);
}
