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
