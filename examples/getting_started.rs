//! Getting started: start the embedded runtime, create an own-GIL subinterpreter, run Python in
//! it from its own worker thread, and attach this thread to it.
//!
//! Run it with `PYO3_PYTHON=/path/to/python3.13 cargo run --example getting_started` (any 3.13
//! or 3.13t build); `cargo test` runs it too (`tests/docs_examples.rs`).

use interpsafe::interpreter::main_interpreter;
use interpsafe::{attach, Error, Isolation, SubInterpreter};

/// Runs the example.
pub fn main() -> Result<(), Error> {
    // Initialise the embedded runtime once (later calls do nothing) and name the main interpreter.
    interpsafe::initialize();
    let main = main_interpreter();

    // A PEP 684 subinterpreter: its own GIL and allocator, on a worker thread of its own.
    let sub = SubInterpreter::new(Isolation::OwnGil)?;
    println!("main is {main}; the new subinterpreter is {}", sub.key());

    // Run a closure on the subinterpreter's worker thread (PEP 734 style)...
    let total = sub.run(|at| at.eval(c"sum(range(10))"))??;
    // ...or attach this thread to it (PEP 788 style: a fresh thread state, deleted afterwards).
    let seen = attach(sub.key(), |at| at.key())?;
    assert_eq!(seen, sub.key());
    println!("the subinterpreter computed {total}; this thread attached to {seen}");

    // Ending waits for every attach guard on it to be released; dropping `sub` would end it too.
    let mut sub = sub;
    sub.end(None)?;
    Ok(())
}
