// A borrow of pyclass data (`PayloadRef`, PyO3's `PyRef`) returned out of the attach closure it
// was taken in. The borrow is only valid under the owner interpreter's attachment (its GIL).
use interpsafe::interpreter::main_interpreter;
use interpsafe::payload::PyClassPayload;

fn main() {
    let main = main_interpreter();
    let payload = interpsafe::attach(main, |at| PyClassPayload::new(at, vec![1_u32])).unwrap();
    let escaped = interpsafe::attach(main, |at| {
        payload.try_borrow(at).unwrap() // the borrow outlives the attach
    })
    .unwrap();
    println!("{}", escaped.len());
}
