//! Running a command inside a root (`python/root.rs`) with chosen host directories visible at
//! the same absolute paths, so `target/py-3.14` and every output path mean the same inside and
//! out.
//!
//! Every run gets its own mount and PID namespaces (`unshare --mount --propagation private --pid
//! --fork --kill-child`): `/proc`, `/dev` and the bind mounts exist only there, never in the
//! host's mount table, and the kernel removes them when the namespace's last process ends. That
//! is the guard on every exit path: xtask's death (Ctrl-C, SIGTERM, even SIGKILL) kills the
//! `unshare` process (`setpriv --pdeathsig KILL`), whose death kills the namespace's first
//! process (`--kill-child`), whose death kills every other process in the PID namespace; with no
//! process left the mount namespace and its mounts are gone. No unmount step exists that an
//! interruption could skip, and a host-side `remove_dir_all` of the root cannot reach through a
//! bind mount into the workspace.

use std::env;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::host;
use crate::paths;
use crate::stage;
use crate::step::{quote, Step};

/// The host tools a chrooted run needs, with the Debian package that has each.
pub const TOOLS: &[(&str, &str)] =
    &[("setpriv", "util-linux"), ("unshare", "util-linux"), ("chroot", "coreutils")];

/// A host path made visible inside the root at the same absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The path, on the host and inside the root.
    pub path: PathBuf,
    /// Whether the root may write there (else the mount is read-only).
    pub writable: bool,
    /// Whether it is a file (else a directory).
    pub file: bool,
}

/// A root directory and what of the host to show inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jail {
    root: PathBuf,
    binds: Vec<Bind>,
}

impl Jail {
    /// A jail of `root` with `/proc` and `/dev` only.
    pub fn new(root: impl Into<PathBuf>) -> Jail {
        Jail { root: root.into(), binds: Vec::new() }
    }

    /// Adds `path` (a directory) at the same path inside, writable or read-only.
    pub fn bind_dir(mut self, path: impl Into<PathBuf>, writable: bool) -> Jail {
        self.binds.push(Bind { path: path.into(), writable, file: false });
        self
    }

    /// Adds `path` (a file) at the same path inside, read-only.
    pub fn bind_file(mut self, path: impl Into<PathBuf>) -> Jail {
        self.binds.push(Bind { path: path.into(), writable: false, file: true });
        self
    }

    /// The binds, in mount order.
    #[cfg(test)]
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// The `sh` script run in the fresh namespaces: mount `/proc`, `/dev` and the binds under
    /// the root, then `exec chroot` into it, change to `cwd` and run the script's arguments.
    pub fn script(&self, cwd: &Path) -> String {
        let inside = |p: &Path| quote(self.root.join(p.strip_prefix("/").unwrap_or(p)).as_os_str());
        let root = quote(self.root.as_os_str());
        let mut lines = vec![
            "set -e".to_string(),
            format!("mount -t proc proc {}", inside(Path::new("/proc"))),
            format!("mount --rbind /dev {}", inside(Path::new("/dev"))),
        ];
        for bind in &self.binds {
            let target = inside(&bind.path);
            if bind.file {
                let parent = bind.path.parent().unwrap_or(Path::new("/"));
                lines.push(format!("mkdir -p {} && touch {target}", inside(parent)));
            } else {
                lines.push(format!("mkdir -p {target}"));
            }
            let ro = if bind.writable { "" } else { " -o ro" };
            lines.push(format!("mount --bind{ro} {} {target}", quote(bind.path.as_os_str())));
        }
        lines.push(format!("exec chroot {root} /usr/bin/env -C {} \"$@\"", quote(cwd.as_os_str())));
        lines.join("\n")
    }

    /// `step` run inside the root: its program, arguments and environment unchanged, in its
    /// working directory (the same path inside; `/` if it has none).
    pub fn wrap(&self, step: Step) -> Step {
        let cwd = step.dir().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let script = self.script(&cwd);
        step.run_through(
            "setpriv",
            [
                "--pdeathsig",
                "KILL",
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--",
                "/bin/sh",
                "-c",
                &script,
                "interpsafe-root",
            ],
        )
    }
}

/// The jail cargo runs in against a root's interpreter: the workspace writable; the Rust
/// toolchain (`$RUSTUP_HOME`, `$CARGO_HOME/bin`), the crates fetched on the host (the
/// registry's index and `.crate` files, git checkouts' databases, `config.toml`) and the cache's
/// `tools/` read-only.
/// Crates are unpacked inside the root's own `$CARGO_HOME/registry/src`, so the host's stays
/// untouched; the build runs offline (`CARGO_NET_OFFLINE`), as the root has no CA certificates.
pub fn toolchain_jail(root: &Path) -> Jail {
    let home = host::home_dir().unwrap_or_else(|| PathBuf::from("/root"));
    let from_env = |var: &str, default: &str| {
        env::var_os(var).filter(|v| !v.is_empty()).map_or_else(|| home.join(default), PathBuf::from)
    };
    let cargo_home = from_env("CARGO_HOME", ".cargo");
    let rustup_home = from_env("RUSTUP_HOME", ".rustup");
    let mut jail = Jail::new(root).bind_dir(paths::workspace_root(), true);
    for dir in [
        rustup_home,
        cargo_home.join("bin"),
        cargo_home.join("registry/index"),
        cargo_home.join("registry/cache"),
        cargo_home.join("git/db"),
    ] {
        if dir.is_dir() {
            jail = jail.bind_dir(dir, false);
        }
    }
    // The cache's tools (`<cache>/tools`, beside `<cache>/roots/`): the instruction bench's
    // runner, which xtask installs on the host.
    if let Some(tools) = root.parent().and_then(Path::parent).map(|cache| cache.join("tools")) {
        if tools.is_dir() {
            jail = jail.bind_dir(tools, false);
        }
    }
    for file in ["config.toml", "config"] {
        let path = cargo_home.join(file);
        if path.is_file() {
            jail = jail.bind_file(path);
        }
    }
    jail
}

/// `step` set up to run in `root` against its toolchain ([`toolchain_jail`]), offline.
pub fn cargo_in_root(root: &Path, step: Step) -> Step {
    toolchain_jail(root).wrap(step.env("CARGO_NET_OFFLINE", "true"))
}

/// Checks that a chrooted run can work here: root, and the tools in [`TOOLS`] on `PATH`; the
/// error says what is missing and what to do.
pub fn check_host() -> Result<(), Error> {
    if !host::is_root() {
        return Err(Error::new(
            "the sid root needs root privileges (debootstrap, chroot and mounts in a private \
             namespace); run xtask as root, or pass --python /path/to/python for an interpreter \
             that runs on this machine",
        ));
    }
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| host::find_in_path(tool).is_none())
        .map(|(tool, package)| format!("{tool} (Debian package {package})"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "running in the sid root needs {} on PATH; install them (apt-get install util-linux \
             coreutils) and retry",
            missing.join(", ")
        )));
    }
    // Root in a restricted container may still be refused namespaces: ask once, plainly.
    let probe = Step::new("unshare").args(["--mount", "--propagation", "private", "--pid"]);
    let probe = probe.args(["--fork", "--kill-child", "true"]);
    match probe.command().output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Error::new(format!(
            "this machine refuses a private mount and PID namespace (`{probe}`: {}), which the \
             sid root's runs need; run xtask as root where namespaces are allowed (a container \
             needs CAP_SYS_ADMIN), or pass --python /path/to/python",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) => Err(stage::spawn_error(&probe, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_mounts_under_the_root_and_runs_in_the_same_directory() {
        let jail = Jail::new("/c/roots/sid")
            .bind_dir("/work/ws", true)
            .bind_dir("/root/.rustup", false)
            .bind_file("/root/.cargo/config.toml");
        let script = jail.script(Path::new("/work/ws"));
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "set -e");
        assert_eq!(lines[1], "mount -t proc proc /c/roots/sid/proc");
        assert_eq!(lines[2], "mount --rbind /dev /c/roots/sid/dev");
        assert!(lines.contains(&"mount --bind /work/ws /c/roots/sid/work/ws"), "{script}");
        assert!(
            lines.contains(&"mount --bind -o ro /root/.rustup /c/roots/sid/root/.rustup"),
            "{script}"
        );
        assert!(lines.contains(
            &"mkdir -p /c/roots/sid/root/.cargo && touch /c/roots/sid/root/.cargo/config.toml"
        ));
        assert_eq!(lines.last(), Some(&"exec chroot /c/roots/sid /usr/bin/env -C /work/ws \"$@\""));
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        let script = Jail::new("/c/my roots/sid").script(Path::new("/w s"));
        assert!(script.contains("mount -t proc proc '/c/my roots/sid/proc'"), "{script}");
        assert!(script.contains("/usr/bin/env -C '/w s'"), "{script}");
    }

    #[test]
    fn wrap_runs_the_step_through_a_private_namespace() {
        let step = Step::new("cargo").arg("test").env("K", "v").current_dir("/work/ws");
        let wrapped = Jail::new("/r").wrap(step).to_string();
        assert!(
            wrapped.starts_with(
                "(in /work/ws) K=v setpriv --pdeathsig KILL unshare --mount --propagation \
                 private --pid --fork --kill-child -- /bin/sh -c "
            ),
            "{wrapped}"
        );
        assert!(wrapped.ends_with("interpsafe-root cargo test"), "{wrapped}");
    }

    #[test]
    fn toolchain_jail_shows_the_workspace_writable_and_the_rest_read_only() {
        let jail = toolchain_jail(Path::new("/r"));
        let first = &jail.binds()[0];
        assert_eq!(first.path, paths::workspace_root());
        assert!(first.writable);
        assert!(jail.binds()[1..].iter().all(|b| !b.writable));
        let step = cargo_in_root(Path::new("/r"), Step::new("cargo")).to_string();
        assert!(step.contains("CARGO_NET_OFFLINE=true"), "{step}");
    }
}
