// A bound object (`ObjRef`, PyO3's `Borrowed`) kept beyond the scope it was bound in. It is valid
// only while the thread stays attached for the scope's borrow; keep a handle instead.
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Strategy, Tagged};

fn main() {
    interpsafe::attach(main_interpreter(), |at| {
        let handle = Tagged::enter(at, |scope| Tagged::eval(scope, c"object()").unwrap());
        let mut escaped = None;
        Tagged::enter(at, |scope| {
            escaped = Some(Tagged::bind(scope, &handle).unwrap()); // outlives the scope
        });
        drop(escaped);
    })
    .unwrap();
}
