//! Strategy against strategy with only the main interpreter ever entered: the tagged strategy's
//! single-interpreter fast path is on. Its own process, so no other interpreter exists.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion) {
    let main = common::main_key();
    assert!(
        interpsafe::interpreter::runtime::only_main_seen(),
        "another interpreter was entered: the single-interpreter numbers would be wrong"
    );
    write_handle_sizes();
    common::all_groups(c, main);
}

/// Records every strategy's handle size beside the figures (`$CRITERION_HOME/handle-sizes.json`,
/// read back by `cargo xtask bench`).
fn write_handle_sizes() {
    let Some(home) = std::env::var_os("CRITERION_HOME") else { return };
    let env = interpsafe::environment::current_environment();
    let mut records = Vec::new();
    macro_rules! size {
        ($s:ty) => {
            records.push(interpsafe::results::ResultRecord {
                environment: env.clone(),
                data: interpsafe::results::RecordData::HandleSize(
                    interpsafe::strategy::handle_size::<$s>(),
                ),
            });
        };
    }
    interpsafe::for_each_strategy!(size);
    let path = std::path::Path::new(&home).join("handle-sizes.json");
    if let Err(e) =
        interpsafe::results::ResultFile::new("benches/single_interpreter", records).write(&path)
    {
        eprintln!("warning: {e}");
    }
}

criterion_group!(single, benches);
criterion_main!(single);
