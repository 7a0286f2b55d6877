// An affine handle moved into `std::thread::spawn`. It is `!Send` (like a
// `#[pyclass(unsendable)]` object): the other thread might be attached to another interpreter, or
// to none. Cross with `Affine::send` / `Affine::receive`, which check the interpreter.
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Affine, Strategy};

fn main() {
    interpsafe::attach(main_interpreter(), |at| {
        Affine::enter(at, |scope| {
            let handle = Affine::eval(scope, c"object()").unwrap();
            std::thread::spawn(move || drop(handle)).join().unwrap(); // `AffineHandle` is !Send
        });
    })
    .unwrap();
}
