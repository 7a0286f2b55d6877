// The attach proof (`Attached`, PyO3's `Python<'py>`) returned out of the attach closure, after
// which the thread is no longer attached.
use interpsafe::interpreter::main_interpreter;

fn main() {
    let escaped = interpsafe::attach(main_interpreter(), |at| at).unwrap(); // proof outlives attach
    println!("{}", escaped.key());
}
