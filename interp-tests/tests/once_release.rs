//! Once-cell values are released when their interpreter's end begins, in that interpreter.
//!
//! Found by the extension-module driver on 3.13-debug: every create, import, use, destroy of an
//! interpreter raised `sys.gettotalrefcount()` (seen from main) by one per once-cell filled
//! there, because the cells kept a strong reference to an object of the ended interpreter (a
//! real leak on legacy interpreters, which share main's allocator). Now the end observer retires
//! every cell's value for the ending interpreter and releases it there: the object's finaliser
//! runs in it, and the drift over interpreter lifecycles is 0.

use std::ffi::CString;

use interpsafe::hazard::{probe_events, ProbeEventKind};
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Affine, Branded, Scoped, Tagged};
use interpsafe::{attach, Isolation, Strategy, SubInterpreter};

/// Python code defining `Probe`, whose finaliser reports `tag` through `_interpsafe.record`.
fn probe_class(tag: i64) -> CString {
    CString::new(format!(
        "import _interpsafe\nclass Probe:\n    def __del__(self):\n        _interpsafe.record({tag}, 1)\n"
    ))
    .unwrap()
}

/// The tests of this file run one at a time: the refcount total is process-wide.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn finalised(tag: i64) -> usize {
    probe_events().iter().filter(|e| e.tag == tag && e.kind == ProbeEventKind::Finalised).count()
}

/// Fills `cell` with a probe in a new interpreter of `isolation`, ends the interpreter, and
/// checks that the probe was finalised (in that interpreter, as its end began) exactly once;
/// then the same cell serves a second interpreter its own value.
fn released_at_end<S: Strategy>(isolation: Isolation, tag: i64) {
    let cell: &'static S::Once = Box::leak(Box::default());
    let mut sub = SubInterpreter::new(isolation).unwrap();
    let code = probe_class(tag);
    let interp_id = sub
        .run(move |at| {
            at.exec(&code).unwrap();
            S::enter(at, |s| {
                S::once(cell, s, |s| S::eval(s, c"Probe()")).map(|_| ()).unwrap();
                // A second access reads the value back (the fast path once published).
                S::once(cell, s, |_| panic!("initialised twice")).map(|_| ()).unwrap();
            });
            at.eval(c"__import__('_interpsafe').interpreter_id()").unwrap()
        })
        .unwrap();
    assert_eq!(finalised(tag), 0, "{} {isolation:?}: released before the end", S::NAME);
    sub.end(None).unwrap();
    assert_eq!(
        finalised(tag),
        1,
        "{} {isolation:?}: the once-cell's value was not released when its interpreter ended",
        S::NAME
    );
    let where_ = probe_events().iter().find(|e| e.tag == tag).map(|e| e.interpreter.to_string());
    assert_eq!(where_, Some(interp_id), "{}: released outside its interpreter", S::NAME);

    // The cell still works for a later interpreter, with that interpreter's own value.
    let mut next = SubInterpreter::new(isolation).unwrap();
    let code = probe_class(tag + 1);
    next.run(move |at| {
        at.exec(&code).unwrap();
        S::enter(at, |s| S::once(cell, s, |s| S::eval(s, c"Probe()")).map(|_| ())).unwrap();
    })
    .unwrap();
    next.end(None).unwrap();
    assert_eq!(finalised(tag + 1), 1, "{}: the second interpreter's value", S::NAME);
}

#[test]
fn once_cell_values_are_released_when_their_interpreter_ends() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for (i, isolation) in [Isolation::OwnGil, Isolation::SharedGil].into_iter().enumerate() {
        let base = 7100 + 10 * i as i64;
        released_at_end::<Tagged>(isolation, base);
        released_at_end::<Scoped>(isolation, base + 2);
        released_at_end::<Branded>(isolation, base + 4);
        released_at_end::<Affine>(isolation, base + 6);
    }
}

/// `sys.gettotalrefcount()` seen from main over interpreter lifecycles that fill every checked
/// strategy's once-cell: no drift (debug builds only; elsewhere the finaliser test stands in).
#[test]
fn no_refcount_drift_over_interpreter_lifecycles() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let total = || {
        attach(main_interpreter(), |at| {
            at.eval(c"__import__('sys').gettotalrefcount() if hasattr(__import__('sys'), 'gettotalrefcount') else -1")
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .unwrap()
    };
    if total() < 0 {
        eprintln!("no sys.gettotalrefcount on this build: skipped");
        return;
    }
    fn fill<S: Strategy>(cell: Option<&'static S::Once>, sub: &SubInterpreter) {
        sub.run(move |at| {
            S::enter(at, |s| match cell {
                Some(cell) => S::once(cell, s, |s| S::eval(s, c"[object()]")).map(|_| ()),
                // The control: the same object made and dropped, no cell.
                None => S::eval(s, c"[object()]").map(drop),
            })
            .unwrap();
        })
        .unwrap();
    }
    let tagged: &'static <Tagged as Strategy>::Once = Box::leak(Box::default());
    let scoped: &'static <Scoped as Strategy>::Once = Box::leak(Box::default());
    let branded: &'static <Branded as Strategy>::Once = Box::leak(Box::default());
    let affine: &'static <Affine as Strategy>::Once = Box::leak(Box::default());
    let lifecycle = |isolation, cells: bool| {
        let mut sub = SubInterpreter::new(isolation).unwrap();
        fill::<Tagged>(cells.then_some(tagged), &sub);
        fill::<Scoped>(cells.then_some(scoped), &sub);
        fill::<Branded>(cells.then_some(branded), &sub);
        fill::<Affine>(cells.then_some(affine), &sub);
        sub.end(None).unwrap();
    };
    // A legacy interpreter's lifecycle drifts by itself on 3.13 (CPython's own leaks), so the
    // drift with once-cells filled is compared with the same lifecycles without them.
    const N: i64 = 6;
    let drift_of = |isolation, cells| {
        let before = total();
        for _ in 0..N {
            lifecycle(isolation, cells);
        }
        total() - before
    };
    for isolation in [Isolation::SharedGil, Isolation::OwnGil] {
        // Warm-up: first-use caches (interned strings, type caches) settle.
        for _ in 0..3 {
            lifecycle(isolation, true);
            lifecycle(isolation, false);
        }
        let control = drift_of(isolation, false);
        let with_cells = drift_of(isolation, true);
        eprintln!("{isolation:?}: drift over {N} lifecycles: {with_cells} with once-cells, {control} without");
        assert_eq!(
            with_cells - control,
            0,
            "{isolation:?}: once-cells add {} references over {N} lifecycles",
            with_cells - control
        );
    }
}

/// The once-cell the late fill below uses (its address), set before each run.
static LATE_CELL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// What the late fill got: 0 not run, 1 stored a value, 2 refused.
static LATE_OUTCOME: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Called from Python through ctypes, attached: fills [`LATE_CELL`] with a `Probe()`.
extern "C" fn fill_late<S: Strategy>() {
    use std::sync::atomic::Ordering;
    // SAFETY: the address is a leaked `S::Once` set by `late_fill_is_refused::<S>`, which runs
    // this one strategy at a time.
    let cell: &'static S::Once = unsafe { &*(LATE_CELL.load(Ordering::SeqCst) as *const S::Once) };
    let outcome = interpsafe::interpreter::attached_here(|at| {
        S::enter(at, |s| S::once(cell, s, |s| S::eval(s, c"Probe()")).map(|_| ()))
    });
    let code = if matches!(outcome, Some(Ok(()))) { 1 } else { 2 };
    LATE_OUTCOME.store(code, Ordering::SeqCst);
}

/// A cell no interpreter had used, first used in an interpreter whose end had begun (from a
/// `__del__` that runs after the toolkit's end hook, as module teardown does): the fill is
/// refused, or its value would never be released (found by attack: 254 references leaked per
/// interpreter on 3.13-debug, from an `atexit` callback that filled an unused cache).
fn late_fill_is_refused<S: Strategy>(isolation: Option<Isolation>, tag: i64) {
    use interp_tests::from_python::{in_main, python_destroy};
    use std::sync::atomic::Ordering;
    let cell: &'static S::Once = Box::leak(Box::default());
    LATE_CELL.store(cell as *const S::Once as usize, Ordering::SeqCst);
    LATE_OUTCOME.store(0, Ordering::SeqCst);
    // The fill runs from an `atexit` callback registered before the toolkit's own end hook (so
    // it runs after it) and from a `__del__` in `__main__` (module teardown, later still).
    let setup = format!(
        "import atexit, ctypes\n\
         class Probe:\n    def __init__(self):\n        __import__('_interpsafe').record({tag}, 2)\n\
         \x20   def __del__(self):\n        __import__('_interpsafe').record({tag}, 1)\n\
         _fill = ctypes.PYFUNCTYPE(None)({})\natexit.register(_fill)\n\
         class Late:\n    def __init__(self):\n        self.fill = _fill\n    def __del__(self):\n        self.fill()\n_late = Late()\n",
        fill_late::<S> as extern "C" fn() as usize
    );
    match isolation {
        // A toolkit subinterpreter, ended by the toolkit (its end hook is already installed).
        Some(isolation) => {
            let setup = CString::new(setup).unwrap();
            let mut sub = SubInterpreter::new(isolation).unwrap();
            sub.run(move |at| at.exec(&setup).unwrap()).unwrap();
            sub.end(None).unwrap();
        }
        // An interpreter Python created, set up before any toolkit code ran there, then entered
        // (`import _interpsafe`), then destroyed from Python.
        None => {
            let id: i64 = in_main(&format!(
                "(lambda i: (__import__('_interpreters').exec(i, {setup:?}), \
                 __import__('_interpreters').exec(i, 'import _interpsafe'), i)[2])\
                 (__import__('_interpreters').create())"
            ))
            .parse()
            .unwrap();
            python_destroy(id).unwrap();
        }
    }
    let outcome = LATE_OUTCOME.load(Ordering::SeqCst);
    assert_ne!(outcome, 0, "{} {isolation:?}: the fill never ran", S::NAME);
    let created = probe_events()
        .iter()
        .filter(|e| e.tag == tag && e.kind == ProbeEventKind::Other(2))
        .count();
    assert_eq!(
        (created, finalised(tag)),
        (created, created),
        "{} {isolation:?}: a value stored in a once-cell after its interpreter's end began was never \
         released",
        S::NAME
    );
}

#[test]
fn a_cell_first_used_after_the_end_began_is_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let settings = [Some(Isolation::OwnGil), Some(Isolation::SharedGil), None];
    for (i, isolation) in settings.into_iter().enumerate() {
        let base = 7200 + 10 * i as i64;
        late_fill_is_refused::<Tagged>(isolation, base);
        late_fill_is_refused::<Scoped>(isolation, base + 2);
        late_fill_is_refused::<Branded>(isolation, base + 4);
        late_fill_is_refused::<Affine>(isolation, base + 6);
    }
}
