//! Runs the examples that the docs pages include (`docs/*.md`, between `<!-- example:NAME -->`
//! markers that `cargo xtask docs` fills from `examples/NAME.rs`), so that every code block in
//! the docs compiles and runs against the interpreter under test.
//!
//! Each example is compiled into this test as a module and its `main` called here; `cargo test`
//! also builds the same files as examples (`cargo run --example NAME`). A new example page needs
//! a `mod` line and a name in `run_examples!` below.

#[path = "../examples/getting_started.rs"]
mod getting_started;
#[path = "../examples/interpreter_model.rs"]
mod interpreter_model;
#[path = "../examples/new_strategy.rs"]
mod new_strategy;
#[path = "../examples/strategy_affine.rs"]
mod strategy_affine;
#[path = "../examples/strategy_branded.rs"]
mod strategy_branded;
#[path = "../examples/strategy_scoped.rs"]
mod strategy_scoped;
#[path = "../examples/strategy_tagged.rs"]
mod strategy_tagged;
#[path = "../examples/strategy_unchecked.rs"]
mod strategy_unchecked;

macro_rules! run_examples {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Err(e) = $name::main() {
                    panic!("examples/{}.rs failed: {e}", stringify!($name));
                }
            }
        )*
    };
}

run_examples!(
    getting_started,
    interpreter_model,
    new_strategy,
    strategy_affine,
    strategy_branded,
    strategy_scoped,
    strategy_tagged,
    strategy_unchecked,
);

/// Every example file is run above (a new one must be added there), except the generators that
/// `cargo xtask docs` runs itself.
#[test]
fn every_example_is_run() {
    const RUN: &[&str] = &[
        "getting_started",
        "interpreter_model",
        "new_strategy",
        "strategy_affine",
        "strategy_branded",
        "strategy_scoped",
        "strategy_tagged",
        "strategy_unchecked",
    ];
    const GENERATORS: &[&str] = &["send_sync_table"];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("examples/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        assert!(
            RUN.contains(&stem.as_str()) || GENERATORS.contains(&stem.as_str()),
            "examples/{stem}.rs is neither run by tests/docs_examples.rs nor a known generator; \
             add it to both lists there"
        );
    }
}
