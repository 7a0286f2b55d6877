//! `branded`: a generative lifetime names one interpreter. Inside the brand, handles are plain
//! pointers and binds check nothing at run time; a handle leaves the brand only as a tagged
//! handle, and coming back in is checked once.

use interpsafe::strategy::{Branded, TaggedHandle};
use interpsafe::{attach, Error, Isolation, Strategy, SubInterpreter};

/// Runs the example.
pub fn main() -> Result<(), Error> {
    interpsafe::initialize();
    let a = SubInterpreter::new(Isolation::OwnGil)?;

    let stored: TaggedHandle = a.run(|at| {
        Branded::enter(at, |scope| -> Result<TaggedHandle, Error> {
            // `handle` is a `BrandedHandle<'s>`: it names this closure's brand `'s` and cannot
            // leave it (compile-fail/tests/ui/branded_handle_escapes_brand.rs), nor be used with
            // another brand's scope (compile-fail/tests/ui/branded_other_brand.rs).
            let handle = Branded::eval(scope, c"{'owner': 'a'}")?;
            let copy = Branded::clone_handle(scope, &handle)?;
            Branded::bind(scope, &copy)?;
            // Leaving the brand turns it into a tagged handle: the brand's interpreter, read
            // when the scope was entered, becomes the tag.
            Ok(Branded::store(scope, handle))
        })
    })??;
    assert_eq!(stored.owner(), a.key());

    // Loading it into a brand of another interpreter is refused, once, at the boundary.
    let error = attach(interpsafe::interpreter::main_interpreter(), move |at| {
        Branded::enter(at, |scope| Branded::load(scope, stored).map(drop))
    })?
    .expect_err("a brand of main cannot adopt a handle of `a`");
    assert!(matches!(error, Error::CrossInterpreter { operation: "load into brand", .. }));
    println!("{error}");
    Ok(())
}
