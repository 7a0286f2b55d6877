//! Tagged under a raw C-API thread-state switch: C code the toolkit does not control moves the
//! thread into another interpreter while a tagged scope of main is open
//! (`PyEval_SaveThread`, `PyThreadState_New`, `PyEval_RestoreThread`). Tagged promises to see
//! it: binds and new owner tags read the interpreter the thread is in at that moment, including
//! the one-interpreter fast path, which must not trust the registry alone (the interpreter here
//! is made by `_interpreters.create()` and never enters toolkit code, so the registry never
//! learns of it).
//!
//! Its own test binary, one test: the fast path is only on while main is the only interpreter
//! the process has registered.

use interp_tests::raw_switch::{interpreter_by_id, switched_into};
use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::only_main_seen;
use interpsafe::strategy::Tagged;
use interpsafe::{attach, Error, Strategy};

/// The fast path's question (is main the only interpreter in CPython's list?) is answered by
/// one load of the list head, located through `_PyRuntime`'s debug offsets and checked against
/// `PyInterpreterState_Head` (3.13's layout); the raw-switch tests below then exercise that
/// load, not the call it replaced.
#[test]
fn the_interpreter_list_head_is_read_in_place() {
    interpsafe::interpreter::initialize();
    assert!(interpsafe::interpreter::runtime::interpreter_list_read_in_place());
}

#[test]
fn tagged_sees_a_raw_switch_into_an_interpreter_it_never_entered() {
    let main = main_interpreter();
    attach(main, |at| {
        at.exec(c"import _interpreters\nraw_id = _interpreters.create()").unwrap();
        let raw_id: i64 = at.eval(c"raw_id").unwrap().parse().unwrap();
        assert!(only_main_seen(), "creating from Python must not register the interpreter");
        // SAFETY: attached to main; the interpreter was just created and is destroyed below.
        let raw = unsafe { interpreter_by_id(raw_id) };
        assert!(!raw.is_null());
        Tagged::enter(at, |scope| {
            let mains = Tagged::eval(scope, c"['made in main']").unwrap();
            assert!(Tagged::bind(scope, &mains).is_ok());
            // SAFETY: attached to main; `raw` lives until the destroy below.
            let made_there = unsafe {
                switched_into(raw, || {
                    // (a) The one-interpreter fast path must not accept main's handle here.
                    let refused = Tagged::bind(scope, &mains).map(|_| ());
                    assert!(
                        matches!(refused, Err(Error::CrossInterpreter { .. })),
                        "main's handle bound in an interpreter toolkit code never entered: {refused:?}"
                    );
                    let refused = Tagged::clone_handle(scope, &mains).map(|_| ());
                    assert!(matches!(refused, Err(Error::CrossInterpreter { .. })), "{refused:?}");
                    // (b) A new object is tagged with the interpreter it was made in, not the
                    // scope's.
                    let there = Tagged::eval(scope, c"['made in the raw interpreter']").unwrap();
                    assert_eq!(there.owner().id.0, raw_id, "tagged with the scope's interpreter");
                    assert!(Tagged::bind(scope, &there).is_ok());
                    Tagged::store(scope, Tagged::clone_handle(scope, &there).unwrap())
                })
            };
            // A reference bound in main and kept across the switch vouches for main only while
            // the thread is there: handles made from it in the raw interpreter (directly, or
            // derived through an operation) belong to nobody, so they are neither used nor
            // released anywhere (they used to be tagged with the raw interpreter and released
            // there: `free(): invalid pointer` on 3.13).
            let r = Tagged::bind(scope, &mains).unwrap();
            // SAFETY: as above.
            let nobodys = unsafe {
                switched_into(raw, || {
                    let made = Tagged::to_handle(scope, r);
                    let derived = interpsafe::ops::getattr::<Tagged>(scope, r, c"append").unwrap();
                    [made, derived]
                })
            };
            for h in &nobodys {
                assert_eq!(h.owner(), interpsafe::tag::Tag::UNKNOWN.key());
                let refused = Tagged::bind(scope, h).map(|_| ());
                assert!(matches!(refused, Err(Error::OwnerUnknown { .. })), "{refused:?}");
            }
            drop(nobodys);
            // Back in main: the raw interpreter's object is refused here.
            let refused = Tagged::bind(scope, &made_there).map(|_| ());
            assert!(matches!(refused, Err(Error::CrossInterpreter { .. })), "{refused:?}");
            // SAFETY: as above.
            unsafe { switched_into(raw, || drop(made_there)) };
        });
        at.exec(c"_interpreters.destroy(raw_id)").unwrap();
    })
    .unwrap();
}
