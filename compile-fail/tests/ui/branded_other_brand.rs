// A branded handle used with another brand's scope. Every `Branded::enter` makes a fresh brand
// (the closure is generic over it), so an object of the outer scope cannot be bound through the
// inner scope's token: the two might be different interpreters, and nothing is checked at run
// time inside a brand.
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Branded, Strategy};

fn main() {
    interpsafe::attach(main_interpreter(), |at| {
        Branded::enter(at, |outer_scope| {
            let outer_handle = Branded::eval(outer_scope, c"object()").unwrap();
            Branded::enter(at, |inner_scope| {
                let _wrong_brand = Branded::bind(inner_scope, &outer_handle); // wrong brand
            });
        });
    })
    .unwrap();
}
