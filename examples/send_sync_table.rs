//! Prints the Send/Sync model's rows for the rule set this build was compiled for (the rows its
//! static assertions checked), in the form `cargo xtask docs` reads: see
//! `interpsafe::send_sync::generator_lines`. Build it against a GIL interpreter, a GIL interpreter
//! with `--features own-gil-rules`, and a free-threaded interpreter for the three columns.

fn main() {
    for line in interpsafe::send_sync::generator_lines() {
        println!("{line}");
    }
}
