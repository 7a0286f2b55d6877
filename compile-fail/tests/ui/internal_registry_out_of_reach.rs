// The process's interpreter registry is internal. With it, safe code could make `attach` use
// any address as an interpreter (`observe(InterpreterId(4242), 0x1000)`) or mark a live
// interpreter ended. Safe code reads it through `runtime::status`, `lookup`, `only_main_seen`.
use interpsafe::interpreter::runtime::registry;
use interpsafe::InterpreterId;

fn main() {
    registry().observe(InterpreterId(4242), 0x1000);
}
