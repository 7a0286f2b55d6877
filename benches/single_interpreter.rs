//! Strategy against strategy with only the main interpreter ever entered: the tagged strategy's
//! single-interpreter fast path is on. Its own process, so no other interpreter exists.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion) {
    let main = common::main_key();
    assert!(
        interpsafe::interpreter::runtime::registry().only_main_seen(),
        "another interpreter was entered: the single-interpreter numbers would be wrong"
    );
    common::all_groups(c, main);
}

criterion_group!(single, benches);
criterion_main!(single);
