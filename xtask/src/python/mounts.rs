//! What is mounted where, from `/proc/self/mountinfo`, and the one way xtask removes a directory
//! under the cache: [`remove_dir_all_unmounted`], which refuses while anything is mounted below
//! it (a bind mount of the workspace or of `~/.rustup` inside a root would otherwise be deleted
//! through).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The mount table of this process.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The mount points listed in a `mountinfo` text (field 5 of each line, octal escapes such as
/// `\040` for a space decoded).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

/// `mountinfo`'s octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash)
/// decoded; anything else is kept as written.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points in `mountinfo` at or below `dir`.
pub fn points_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mount_points(mountinfo).into_iter().filter(|p| p.starts_with(dir)).collect()
}

/// The mount points of this process at or below `dir`; an unreadable mount table is an error
/// (nothing under the cache is removed without knowing).
pub fn mounted_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let text = fs::read_to_string(MOUNTINFO).map_err(|e| {
        Error::io("read the mount table", Path::new(MOUNTINFO), &e)
            .reword(|m| format!("{m}; xtask checks it before removing anything under its cache"))
    })?;
    Ok(points_under(&text, dir))
}

/// Removes `dir` and everything below it, unless something is mounted there: then the error
/// names the mount points and the `umount` line that releases them. A missing `dir` is fine.
pub fn remove_dir_all_unmounted(dir: &Path) -> Result<(), Error> {
    let mounted = mounted_under(dir)?;
    if let Some(first) = mounted.first() {
        let list: Vec<String> = mounted.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::new(format!(
            "refusing to remove {}: {} mount(s) below it ({}); a bind mount there would be \
             deleted through. Release them with `umount -R {}` (or end the process that holds \
             them) and retry",
            dir.display(),
            mounted.len(),
            list.join(", "),
            first.display()
        )));
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
66 22 254:0 /work/ws /c/roots/sid/work/ws rw,relatime - ext4 /dev/vda rw
67 22 0:40 / /c/roots/sid/proc rw,relatime - proc proc rw
68 22 0:41 / /c/roots/sid\\040two/x rw - tmpfs tmpfs rw
69 22 0:42 / /c/roots/sidecar rw - tmpfs tmpfs rw
";

    #[test]
    fn mount_points_decode_escapes() {
        let points = mount_points(SAMPLE);
        assert_eq!(points.len(), 5);
        assert_eq!(points[3], PathBuf::from("/c/roots/sid two/x"));
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn points_under_a_directory_are_whole_components() {
        let under = points_under(SAMPLE, Path::new("/c/roots/sid"));
        assert_eq!(
            under,
            [PathBuf::from("/c/roots/sid/work/ws"), PathBuf::from("/c/roots/sid/proc")]
        );
        assert!(points_under(SAMPLE, Path::new("/elsewhere")).is_empty());
    }

    #[test]
    fn removes_unmounted_directories_and_tolerates_missing_ones() {
        let dir = TestDir::new("mounts");
        let victim = dir.path().join("root");
        fs::create_dir_all(victim.join("a/b")).unwrap();
        fs::write(victim.join("a/b/f"), "x").unwrap();
        remove_dir_all_unmounted(&victim).unwrap();
        assert!(!victim.exists());
        remove_dir_all_unmounted(&victim).unwrap();
    }

    #[test]
    fn refuses_a_directory_with_a_mount_below() {
        // `/proc` is a mount point on every Linux system this runs on.
        let err = remove_dir_all_unmounted(Path::new("/proc")).unwrap_err();
        assert!(err.message().contains("refusing to remove /proc"), "{}", err.message());
        assert!(err.message().contains("umount -R /proc"), "{}", err.message());
    }
}
