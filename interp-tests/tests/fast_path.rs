//! The tagged strategy's single-interpreter fast path and the invariant it rests on: every way
//! into toolkit code from an interpreter other than main turns the flag off before that code can
//! bind anything. This file is its own test binary (its own process), so the flag starts clear,
//! and its steps run in one test, in order.

use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::{lookup, only_main_seen};
use interpsafe::strategy::{Tagged, TaggedHandle};
use interpsafe::{attach, Error, InterpreterId, Strategy};

#[test]
fn every_entry_from_a_second_interpreter_clears_the_fast_path_first() {
    let main = main_interpreter();
    assert!(only_main_seen(), "the flag must start set: only main has entered");

    // Fast path: a handle of main binds in main without an interpreter lookup.
    let kept: TaggedHandle = attach(main, |at| {
        Tagged::enter(at, |scope| {
            let h = Tagged::eval(scope, c"object()").unwrap();
            assert!(Tagged::bind(scope, &h).is_ok());
            h
        })
    })
    .unwrap();

    // A second interpreter created by Python code, never entered by toolkit code yet: the flag
    // stays set (nothing of ours runs there)...
    let iid: i64 = attach(main, |at| {
        at.exec(c"import _interpreters\n_fp = _interpreters.create()").unwrap();
        at.eval(c"_fp").unwrap().parse().unwrap()
    })
    .unwrap();
    assert!(only_main_seen());
    assert_eq!(lookup(InterpreterId(iid)), None);

    // ...until Python code there enters toolkit code (the module's exec slot): registration on
    // first entry clears the flag, so the very next check in that interpreter takes the slow
    // path and sees the mismatch.
    attach(main, |at| {
        at.exec(c"_interpreters.exec(_fp, 'import _interpsafe')").unwrap();
    })
    .unwrap();
    assert!(!only_main_seen(), "entering through the exec slot left the flag set");
    let key = lookup(InterpreterId(iid)).unwrap();
    let err = attach(key, move |at| {
        Tagged::enter(at, |scope| Tagged::bind(scope, &kept).map(|_| ()).unwrap_err())
    })
    .unwrap();
    assert!(matches!(err, Error::CrossInterpreter { .. }), "{err}");
    attach(main, |at| at.exec(c"_interpreters.destroy(_fp)").unwrap()).unwrap();
}
