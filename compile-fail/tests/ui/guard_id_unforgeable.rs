// A guard ID cannot be made by hand: guard IDs are sequential, so a forged one could release an
// attach guard another thread holds, and the interpreter could then end under it. Only
// `Registry::attach` makes one.
use interpsafe::protocol::GuardId;

fn main() {
    let _forged = GuardId(7);
}
