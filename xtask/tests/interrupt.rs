//! xtask interrupted in the middle of a chrooted run leaves nothing mounted and nothing running.
//!
//! Spawns `xtask python run 3.14 -- sh -c '...; exec sleep N'` (the same wrapper every cargo
//! stage against 3.14 goes through), waits until the command runs inside the sid root, checks
//! that its mounts exist in its own namespace and none in the host's, sends SIGINT or SIGTERM to
//! xtask alone, and then checks that the namespace (every process in it, so every mount) is gone
//! and that nothing is mounted under the cache.
//!
//! Needs root and an installed sid root (`cargo xtask python install 3.14`); elsewhere each test
//! says it skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The cache xtask uses (`$INTERPSAFE_CACHE`, else `~/.cache/interpsafe`).
fn cache() -> Option<PathBuf> {
    match std::env::var_os("INTERPSAFE_CACHE").filter(|c| !c.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/interpsafe")),
    }
}

/// The sid root, if this machine can run the test (root, root built, 3.14 installed).
fn sid_root() -> Option<(PathBuf, PathBuf)> {
    let cache = cache()?;
    let root = cache.join("roots/sid");
    let uid = Command::new("id").arg("-u").output().ok()?;
    let ready = String::from_utf8_lossy(&uid.stdout).trim() == "0"
        && root.join("interpsafe-root.json").is_file()
        && cache.join("python/3.14/interpsafe-build.json").is_file();
    ready.then_some((cache, root))
}

/// Every process id on the machine.
fn pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|entries| {
            entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
        })
        .unwrap_or_default()
}

/// The host pid of the process running `sleep <seconds>` chrooted into `root`.
fn chrooted_sleep(root: &Path, seconds: &str) -> Option<u32> {
    pids().into_iter().find(|pid| {
        let in_root = fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == root);
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        in_root && argv.first() == Some(&&b"sleep"[..]) && argv.get(1) == Some(&seconds.as_bytes())
    })
}

/// The mount namespace of `pid` (`mnt:[inode]`).
fn mount_ns(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// Mount points in the mountinfo text at or below `dir`.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// Polls `f` every 100 ms until it returns true or `limit` passes; returns its last answer.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
}

/// The spawned xtask, killed if a failed assertion ends the test before the signal does.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`INT`, `TERM`) to `child` alone.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").args(["-s", signal, &child.id().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -s {signal} failed");
}

/// The test body: interrupt a chrooted run with `sig`; `seconds` tells the tests' sleeps apart.
fn interrupted_run_leaves_nothing_behind(sig: &str, seconds: &str) {
    let Some((cache, root)) = sid_root() else {
        eprintln!("skipped: needs root and `cargo xtask python install 3.14`");
        return;
    };
    let mut spawned = Spawned(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["python", "run", "3.14", "--", "sh", "-c"])
            .arg(format!("exec sleep {seconds}"))
            .spawn()
            .expect("spawn xtask"),
    );
    let child = &mut spawned.0;
    let mut pid = None;
    let started = wait_until(Duration::from_secs(60), || {
        pid = chrooted_sleep(&root, seconds);
        pid.is_some()
    });
    assert!(started, "the chrooted `sleep {seconds}` never started");
    let pid = pid.unwrap_or_default();
    let ns = mount_ns(pid).expect("the sleep's mount namespace");
    assert_ne!(mount_ns(std::process::id()), Some(ns.clone()), "not in a namespace of its own");
    // A chrooted process's mountinfo shows its mounts relative to its root: the workspace at
    // its own absolute path.
    let inside = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
    for want in [Path::new("/proc"), Path::new("/dev"), workspace] {
        assert!(
            !mounts_under(&inside, want).is_empty(),
            "the run's namespace lacks a mount at {}:\n{inside}",
            want.display()
        );
    }
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert_eq!(mounts_under(&host, &cache), Vec::<String>::new(), "mounts leaked to the host");

    signal(child, sig);
    let exited = wait_until(Duration::from_secs(30), || child.try_wait().ok().flatten().is_some());
    assert!(exited, "xtask did not end on SIG{sig}");
    let gone = wait_until(Duration::from_secs(30), || {
        pids().into_iter().all(|p| mount_ns(p).as_ref() != Some(&ns))
    });
    assert!(gone, "processes of the run's namespace outlived xtask (SIG{sig})");
    assert_eq!(chrooted_sleep(&root, seconds), None);
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert_eq!(mounts_under(&host, &cache), Vec::<String>::new(), "mounts left under the cache");
}

#[test]
fn sigint_mid_run_leaves_no_mount_and_no_process() {
    interrupted_run_leaves_nothing_behind("INT", "31337");
}

#[test]
fn sigterm_mid_run_leaves_no_mount_and_no_process() {
    interrupted_run_leaves_nothing_behind("TERM", "31338");
}
