//! The interpreter core against a real CPython: own-GIL subinterpreters on threads, attaching to a
//! chosen interpreter, ending with guards held, and interpreters created from Python.

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use interp_tests::{Rendezvous, FREE_THREADED};
use interpsafe::protocol::{EndRefused, Status};
use interpsafe::{
    attach, current_interpreter,
    interpreter::main_interpreter,
    interpreter::runtime::{lookup, status},
    Error, InterpreterGuard, InterpreterId, Isolation, SubInterpreter,
};

#[test]
fn own_gil_subinterpreters_run_python_at_the_same_time() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let main = main_interpreter();
    assert_ne!(a.key(), b.key());
    assert_ne!(a.key().id, main.id);
    assert_ne!(b.key().id, main.id);
    assert!(main.id.is_main());

    // Each worker runs Python, then waits, still attached (holding its own GIL on a GIL build),
    // for the other to get there too, then runs Python again. With one shared GIL the second
    // could not attach while the first waits, so meeting proves they ran in parallel.
    let meet = Arc::new(Rendezvous::new(2));
    let run = |interp: &SubInterpreter| {
        let meet = meet.clone();
        let expected = interp.key().id.0;
        interp_run(interp, move |at| {
            let id: i64 = at.eval(c"__import__('_interpsafe').interpreter_id()")?.parse().unwrap();
            at.exec(c"total = sum(range(100_000))")?;
            // Waiting attached needs safe points on 3.13t: importing an extension that does not
            // declare Py_MOD_GIL_NOT_USED (other tests run concurrently) stops the world of every
            // interpreter, which a thread spinning attached would block. On the GIL build the safe
            // point does nothing, so the worker keeps its own GIL while it waits.
            let met = meet.meet_with(Duration::from_secs(20), || at.safe_point());
            let total = at.eval(c"total")?;
            Ok((id, met, total, expected))
        })
    };
    let (ra, rb) = thread::scope(|s| {
        let ha = s.spawn(|| run(&a));
        let hb = s.spawn(|| run(&b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    for (id, met, total, expected) in [ra, rb] {
        assert_eq!(id, expected, "Python saw a different interpreter than the registry");
        assert!(met, "the two own-GIL interpreters never ran at the same time");
        assert_eq!(total, "4999950000");
    }
}

fn interp_run<R: Send + 'static>(
    interp: &SubInterpreter,
    f: impl FnOnce(&interpsafe::Attached<'_>) -> Result<R, Error> + Send + 'static,
) -> R {
    interp.run(f).unwrap().unwrap()
}

#[test]
fn shared_gil_subinterpreters_serialise_on_gil_builds() {
    let a = SubInterpreter::new(Isolation::SharedGil).unwrap();
    let b = SubInterpreter::new(Isolation::SharedGil).unwrap();
    assert_ne!(a.key(), b.key());
    let meet = Arc::new(Rendezvous::new(2));
    let met = thread::scope(|s| {
        let hs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|i| {
                let meet = meet.clone();
                s.spawn(move || i.run(move |_| meet.meet(Duration::from_millis(300))).unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    if FREE_THREADED {
        // No GIL to share: both get there.
        assert_eq!(met, vec![true, true]);
    } else {
        // One shared GIL: whoever holds it waits alone.
        assert!(met.contains(&false), "legacy interpreters ran in parallel on a GIL build");
    }
}

#[test]
fn a_thread_attaches_to_a_chosen_interpreter_then_another() {
    let a = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let b = SubInterpreter::new(Isolation::OwnGil).unwrap();
    thread::spawn(move || {
        assert_eq!(current_interpreter(), None);
        let seen_a = attach(a.key(), |at| {
            let py_id = at.eval(c"__import__('_interpreters').get_current()[0]").unwrap();
            (current_interpreter(), py_id)
        })
        .unwrap();
        assert_eq!(seen_a.0, Some(a.key()));
        assert_eq!(seen_a.1, a.key().id.0.to_string());
        assert_eq!(current_interpreter(), None, "detaching left the thread attached");
        let seen_b = attach(b.key(), |at| {
            // Nested: attach to a while attached to b, and come back to b.
            let inner = attach(a.key(), |_| current_interpreter()).unwrap();
            (inner, current_interpreter(), at.key())
        })
        .unwrap();
        assert_eq!(seen_b, (Some(a.key()), Some(b.key()), b.key()));
        assert_eq!(current_interpreter(), None);
    })
    .join()
    .unwrap();
}

#[test]
fn ending_waits_for_guards_and_a_bounded_wait_names_the_holder() {
    let mut interp = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let key = interp.key();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = thread::Builder::new()
        .name("guard-holder".into())
        .spawn(move || {
            // Hold a guard (PEP 788's PyInterpreterGuard) without staying attached: an attached
            // thread would also hold the interpreter's own GIL and stall its worker.
            let guard = InterpreterGuard::new(key).unwrap();
            guard.attach(|at| at.exec(c"x = 1").unwrap()).unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(guard);
        })
        .unwrap();
    held_rx.recv().unwrap();

    // A bounded wait runs out, names the holder, and leaves the interpreter alive and usable.
    let err = interp.end(Some(Duration::from_millis(200))).unwrap_err();
    match &err {
        Error::End(EndRefused::Busy { holders, .. }) => {
            assert_eq!(holders.len(), 1);
            assert!(holders[0].thread.contains("guard-holder"), "{err}");
        }
        other => panic!("expected a Busy end, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("interpreter {}", key.id.0)), "{err}");
    assert_eq!(status(key), Some(Status::Alive));
    assert_eq!(interp.run(|at| at.eval(c"x + 1").unwrap()).unwrap(), "2");

    // An unbounded end waits until the guard is released, then ends.
    let (ended_tx, ended_rx) = mpsc::channel();
    let ender = thread::spawn(move || {
        let r = interp.end(None);
        ended_tx.send(()).unwrap();
        r
    });
    assert!(ended_rx.recv_timeout(Duration::from_millis(300)).is_err(), "end did not wait");
    assert_eq!(status(key), Some(Status::Ending));
    // New guards are refused once the end has begun.
    assert!(matches!(InterpreterGuard::new(key), Err(Error::Attach(_))));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    ender.join().unwrap().unwrap();
    assert_eq!(status(key), Some(Status::Ended));
    let after = attach(key, |_| ()).unwrap_err();
    assert!(after.to_string().contains("has ended"), "{after}");
}

#[test]
fn an_end_requested_by_a_holder_is_refused_not_deadlocked() {
    let mut interp = SubInterpreter::new(Isolation::OwnGil).unwrap();
    let guard = InterpreterGuard::new(interp.key()).unwrap();
    assert!(matches!(interp.end(None), Err(Error::End(EndRefused::CallerHolds { .. }))));
    drop(guard);
    interp.end(None).unwrap();
}

#[test]
fn interpreters_created_from_python_register_on_first_entry_and_are_seen_ending() {
    let main = main_interpreter();
    let (id, alive_after_entry) = attach(main, |at| {
        at.exec(c"import _interpreters\n_iid = _interpreters.create()").unwrap();
        let id: i64 = at.eval(c"_iid").unwrap().parse().unwrap();
        assert_eq!(lookup(InterpreterId(id)), None, "registered before any entry");
        // First entry: code in the new interpreter imports the toolkit's builtin module.
        at.exec(c"_interpreters.exec(_iid, 'import _interpsafe\\nassert _interpsafe.interpreter_id() > 0')")
            .unwrap();
        let key = lookup(InterpreterId(id)).expect("not registered on first entry");
        let alive = status(key);
        at.exec(c"_interpreters.destroy(_iid)").unwrap();
        (key, alive)
    })
    .unwrap();
    assert_eq!(alive_after_entry, Some(Status::Alive));
    assert_eq!(status(id), Some(Status::Ended), "the end went unobserved");
}
