// Pyclass data that is `Send` but not `Sync` (a `RefCell`), shared by two threads attached to its
// interpreter. On a GIL build this compiles and is sound: the GIL serialises the borrows, as a
// mutex would. On a free-threaded build it must not compile: both threads could hold
// `&RefCell<u32>` at once (PyO3: `#[pyclass]` must be `Sync`).
use std::cell::RefCell;

use interpsafe::interpreter::main_interpreter;
use interpsafe::payload::PyClassPayload;
use interpsafe::InterpreterKey;

fn bump_from_two_threads(payload: &PyClassPayload<RefCell<u32>>, interp: InterpreterKey) {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| { // shares `&PyClassPayload<RefCell<u32>>` with another thread
                interpsafe::attach(interp, |at| {
                    let data = payload.try_borrow(at).unwrap();
                    *data.borrow_mut() += 1;
                })
                .unwrap()
            });
        }
    });
}

fn main() {
    let main = main_interpreter();
    let payload = interpsafe::attach(main, |at| PyClassPayload::new(at, RefCell::new(0))).unwrap();
    bump_from_two_threads(&payload, main);
    assert_eq!(payload.into_inner().into_inner(), 2);
}
