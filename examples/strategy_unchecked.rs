//! `unchecked`: today's `Py<T>`, the baseline. Inside one interpreter it is all a binding needs;
//! nothing in it records or checks the owner interpreter.

use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Unchecked, UncheckedHandle};
use interpsafe::{attach, Error, Strategy};

/// What `Py<T>` claims and the baseline copies: it may go to any thread.
fn is_send_and_sync<T: Send + Sync>() {}

/// Runs the example.
pub fn main() -> Result<(), Error> {
    interpsafe::initialize();
    is_send_and_sync::<UncheckedHandle>();
    let length = attach(main_interpreter(), |at| {
        at.exec(c"items = []")?;
        Unchecked::enter(at, |scope| -> Result<(), Error> {
            let items = Unchecked::eval(scope, c"items")?;
            let item = Unchecked::eval(scope, c"'an item'")?;
            let copy = Unchecked::clone_handle(scope, &item)?;
            // `bind` checks nothing: it trusts that this thread is attached to the owner.
            let (items, copy) = (Unchecked::bind(scope, &items)?, Unchecked::bind(scope, &copy)?);
            interpsafe::ops::list_append::<Unchecked>(scope, items, copy)
        })?;
        at.eval(c"len(items)")
    })??;
    println!("len(items) = {length}");
    // Stored, the same handle could be loaded and bound in another interpreter, or dropped with
    // no thread attached and released by whichever interpreter attaches next (PyO3's global
    // pool). The hazard suite does exactly that, in child processes; this example does not.
    Ok(())
}
