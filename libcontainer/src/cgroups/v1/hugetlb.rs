//! v1 `hugetlb`: hugetlb.<size>.limit_in_bytes per page size.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::{Controller, Subsystem};

pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    const SUBSYSTEM: Subsystem = Subsystem::Hugetlb;

    fn needs(r: &LinuxResources) -> bool {
        r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        for l in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
            // An unknown page size would otherwise be a bare ENOENT.
            if !dir.join(&file).exists() {
                return Err(CgroupError::InvalidResource(format!(
                    "hugepage size {:?} is not supported here ({} missing)",
                    l.page_size(),
                    dir.join(&file).display()
                )));
            }
            write_file(dir, &file, &l.limit().to_string())?;
        }
        Ok(())
    }
}
