//! The same operations once a second interpreter exists: the tagged strategy pays its
//! per-access interpreter lookup. Measured in main, with an own-GIL subinterpreter alive.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use interpsafe::{Isolation, SubInterpreter};

fn benches(c: &mut Criterion) {
    let main = common::main_key();
    let other = SubInterpreter::new(Isolation::OwnGil).expect("a second interpreter");
    assert!(!interpsafe::interpreter::runtime::only_main_seen());
    common::all_groups(c, main);
    drop(other);
}

criterion_group!(several, benches);
criterion_main!(several);
