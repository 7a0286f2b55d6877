//! Writes the Send/Sync model's cells for the rule set this build was compiled for (the cells its
//! static assertions checked) as an `interpsafe_results::ResultFile` to the path given as the
//! only argument: see `interpsafe::send_sync::result_file`. `cargo xtask docs` builds it against
//! a GIL interpreter, a GIL interpreter with `--features own-gil-rules`, and a free-threaded
//! interpreter, and collects the three files into `docs/data/send-sync.json`.

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: send_sync_table OUTPUT.json");
        std::process::exit(2);
    };
    if let Err(e) = interpsafe::send_sync::result_file().write(std::path::Path::new(&path)) {
        eprintln!("send_sync_table: {e}");
        std::process::exit(1);
    }
}
