//! `scoped`: the scope reads the current interpreter once, at entry; binds inside compare each
//! handle's tag with that reading instead of asking CPython again.

use interpsafe::strategy::{Scoped, TaggedHandle};
use interpsafe::{attach, Error, Isolation, Strategy, SubInterpreter};

/// Runs the example.
pub fn main() -> Result<(), Error> {
    interpsafe::initialize();
    let a = SubInterpreter::new(Isolation::OwnGil)?;

    // Handles are the tagged strategy's handles.
    let handles: Vec<TaggedHandle> = a.run(|at| {
        Scoped::enter(at, |scope| -> Result<Vec<TaggedHandle>, Error> {
            let items = [c"'x'", c"('made', 'in a')", c"['made in a']"];
            items.iter().map(|expr| Scoped::eval(scope, expr)).collect()
        })
    })??;

    // One scope, many binds: each bind is a compare against the scope's reading.
    let handles = a.run(move |at| {
        Scoped::enter(at, |scope| -> Result<Vec<TaggedHandle>, Error> {
            for h in &handles {
                Scoped::bind(scope, h)?;
            }
            Ok(handles)
        })
    })??;

    // In main, binds refuse the handles of `a`, except the one-character Latin-1 string: it is
    // one of the runtime's shared static objects, recognised by address, usable anywhere.
    let usable: Vec<bool> = attach(interpsafe::interpreter::main_interpreter(), move |at| {
        Scoped::enter(at, |scope| handles.iter().map(|h| Scoped::bind(scope, h).is_ok()).collect())
    })?;
    assert_eq!(usable, [true, false, false]);
    println!("usable in main: {usable:?}");
    Ok(())
}
