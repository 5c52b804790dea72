//! `resources.unified`: raw "file name -> value" pairs written verbatim,
//! after the structured fields so they take precedence.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::Controller;

pub(crate) struct Unified;

impl Controller for Unified {
    const NAME: Option<&'static str> = None;

    fn needs(r: &LinuxResources) -> bool {
        r.unified().as_ref().is_some_and(|u| !u.is_empty())
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(u) = r.unified() else {
            return Ok(());
        };
        // Sorted for a deterministic write order.
        let mut keys: Vec<_> = u.keys().collect();
        keys.sort();
        for key in keys {
            // A key is a file in this directory, never a path elsewhere.
            if key.is_empty() || key.contains('/') || key == "." || key == ".." {
                return Err(CgroupError::InvalidUnifiedKey(key.clone()));
            }
            let path = dir.join(key);
            if !path.is_file() {
                return Err(CgroupError::UnifiedKeyMissing {
                    key: key.clone(),
                    path,
                });
            }
            write_file(dir, key, &u[key])?;
        }
        Ok(())
    }
}
