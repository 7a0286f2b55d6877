// A branded handle returned out of its brand closure. Its type names the brand, which exists only
// inside `Branded::enter`; to keep an object beyond it, `Branded::store` it (a checked handle).
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Branded, Strategy};

fn main() {
    interpsafe::attach(main_interpreter(), |at| {
        let escaped = Branded::enter(at, |scope| {
            Branded::eval(scope, c"object()").unwrap() // leaves the brand
        });
        drop(escaped);
    })
    .unwrap();
}
