// A reference the baseline bound (unchecked, so possibly in the wrong interpreter) turned into a
// tagged handle: each checked strategy's borrowed type is its own (`TaggedRef`, `ScopedRef`,
// `AffineRef`), made only by its own checked operations, so the baseline's `ObjRef` is not one.
// It used to be: the handle was then tagged with whatever interpreter the thread was in.
use interpsafe::interpreter::main_interpreter;
use interpsafe::strategy::{Strategy, Tagged, Unchecked};

fn main() {
    interpsafe::attach(main_interpreter(), |at| {
        Unchecked::enter(at, |us| {
            Tagged::enter(at, |ts| {
                let u = Unchecked::eval(us, c"object()").unwrap();
                let r = Unchecked::bind(us, &u).unwrap();
                drop(Tagged::to_handle(ts, r));
            })
        })
    })
    .unwrap();
}
