//! Pod networking through CNI. For now: finding the network configuration (Status reports
//! NetworkReady from it); plugin execution lands with the pod sandbox work.

pub mod cni;

use std::path::{Path, PathBuf};

/// The configuration file of the default network: the first `.conflist`, `.conf` or `.json` file
/// by name in `dir`, as cri-o and the CNI library choose it.
pub fn default_network_file(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conflist" | "conf" | "json")
            )
        })
        .collect();
    files.sort();
    files.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_config_by_name_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(default_network_file(dir.path()), None);
        std::fs::write(dir.path().join("README"), "x").unwrap();
        std::fs::write(dir.path().join("20-b.conf"), "{}").unwrap();
        std::fs::write(dir.path().join("10-a.conflist"), "{}").unwrap();
        assert_eq!(
            default_network_file(dir.path()),
            Some(dir.path().join("10-a.conflist"))
        );
    }
}
