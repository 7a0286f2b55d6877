// An affine handle made in a nested attach to another interpreter cannot be returned out of it:
// the attach result must be `Send`, as PyO3's `allow_threads` result must be `Ungil`. Returned,
// it would be used, stored or dropped in the outer scope's interpreter.
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Affine, Strategy};

fn main() {
    let main = main_interpreter();
    interpsafe::attach(main, |_outer| {
        let _escaped = interpsafe::attach(main, |at| {
            Affine::enter(at, |scope| Affine::eval(scope, c"object()").unwrap())
        });
    })
    .unwrap();
}
