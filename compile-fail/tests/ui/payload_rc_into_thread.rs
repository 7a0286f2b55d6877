// Pyclass data that is not `Send` (an `Rc`) moved to another thread: on every build a Python
// object can be used and freed on any thread, so PyO3 needs `Send` (or `#[pyclass(unsendable)]`).
use std::rc::Rc;

use interpsafe::interpreter::main_interpreter;
use interpsafe::payload::PyClassPayload;

fn main() {
    let payload =
        interpsafe::attach(main_interpreter(), |at| PyClassPayload::new(at, Rc::new(1_u32)))
            .unwrap();
    std::thread::spawn(move || drop(payload)).join().unwrap(); // pyclass data is not Send
}
