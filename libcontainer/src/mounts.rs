//! Reading the mount table.

use std::path::{Path, PathBuf};

/// The mount point of the filesystem holding `path`: the longest mount point in
/// `/proc/self/mountinfo` that is a prefix of the canonical path.
pub fn mountpoint_of(path: &Path) -> std::io::Result<PathBuf> {
    let path = path.canonicalize()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(longest_mount_prefix(&table, &path))
}

fn longest_mount_prefix(mountinfo: &str, path: &Path) -> PathBuf {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|mount| path.starts_with(mount))
        .max_by_key(|mount| mount.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let table = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                     30 22 0:5 / /var/lib rw - ext4 /dev/sdb rw\n\
                     31 22 0:6 / /var/lib\\040x rw - tmpfs t rw\n";
        assert_eq!(
            longest_mount_prefix(table, Path::new("/var/lib/crius/images")),
            PathBuf::from("/var/lib")
        );
        assert_eq!(
            longest_mount_prefix(table, Path::new("/var/lib x/a")),
            PathBuf::from("/var/lib x")
        );
        assert_eq!(
            longest_mount_prefix(table, Path::new("/etc")),
            PathBuf::from("/")
        );
    }
}
