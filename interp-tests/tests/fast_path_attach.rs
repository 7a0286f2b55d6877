//! The fast-path invariant for the toolkit's own entry points: creating a subinterpreter (its
//! worker observes it) clears the flag before any closure runs there. Its own process, so the
//! flag starts set.

use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::only_main_seen;
use interpsafe::strategy::Tagged;
use interpsafe::{attach, Error, Isolation, Strategy, SubInterpreter};

#[test]
fn creating_a_subinterpreter_clears_the_fast_path_before_it_runs_code() {
    let main = main_interpreter();
    assert!(only_main_seen());
    let h = attach(main, |at| Tagged::enter(at, |scope| Tagged::eval(scope, c"object()").unwrap()))
        .unwrap();
    let sub = SubInterpreter::new(Isolation::SharedGil).unwrap();
    assert!(!only_main_seen());
    let err = sub
        .run(move |at| Tagged::enter(at, |scope| Tagged::bind(scope, &h).map(|_| ()).unwrap_err()))
        .unwrap();
    assert!(matches!(err, Error::CrossInterpreter { .. }), "{err}");
}
