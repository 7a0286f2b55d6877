//! `tagged`: every handle records its owner interpreter and every bind compares it with the
//! interpreter the thread is attached to.

use interpsafe::strategy::{Tagged, TaggedHandle};
use interpsafe::{Error, Isolation, Strategy, SubInterpreter};

/// Runs the example.
pub fn main() -> Result<(), Error> {
    interpsafe::initialize();
    let mut a = SubInterpreter::new(Isolation::OwnGil)?;
    let b = SubInterpreter::new(Isolation::OwnGil)?;

    // A handle made in `a` is a pointer plus `a`'s tag; it is `Send`, so it may travel.
    let handle: TaggedHandle =
        a.run(|at| Tagged::enter(at, |scope| Tagged::eval(scope, c"{'owner': 'a'}")))??;
    assert_eq!(handle.owner(), a.key());

    // Bound in `a`, it works.
    let handle = a.run(move |at| {
        Tagged::enter(at, |scope| -> Result<TaggedHandle, Error> {
            Tagged::bind(scope, &handle)?;
            Ok(handle)
        })
    })??;

    // Bound in `b`, it is refused: a runtime error that names both interpreters.
    let handle = b.run(move |at| {
        Tagged::enter(at, |scope| {
            let error = Tagged::bind(scope, &handle).expect_err("foreign handle");
            assert!(matches!(error, Error::CrossInterpreter { operation: "bind", .. }));
            println!("{error}");
            handle
        })
    })?;

    // Ending `a` while a handle of it lives elsewhere is allowed; dropping the handle afterwards
    // releases nothing (its owner's queue closed when `a` ended) instead of freeing into `b`.
    a.end(None)?;
    drop(handle);
    drop(b);
    Ok(())
}
