// The deferred-decref pool is internal. With it, safe code could queue a decref of any address
// in any interpreter (`defer(main, 0x10)`), which the next attach there would execute. Safe code
// reads it through `runtime::decref_stats` and `runtime::pending_decrefs`.
use interpsafe::interpreter::main_interpreter;
use interpsafe::interpreter::runtime::decref_pool;

fn main() {
    decref_pool().defer(main_interpreter(), 0x10);
}
