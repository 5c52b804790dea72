//! v2 `hugetlb`: hugetlb.<size>.max, plus .rsvd.max where the kernel has
//! reservation accounting so reserved-but-unfaulted pages are capped too.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::Controller;

pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    const NAME: Option<&'static str> = Some("hugetlb");

    fn needs(r: &LinuxResources) -> bool {
        r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        for l in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.max", l.page_size());
            if !dir.join(&file).exists() {
                return Err(CgroupError::InvalidResource(format!(
                    "hugepage size {:?} is not supported here ({} missing)",
                    l.page_size(),
                    dir.join(&file).display()
                )));
            }
            let v = if l.limit() < 0 {
                "max".to_string()
            } else {
                l.limit().to_string()
            };
            write_file(dir, &file, &v)?;
            let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
            if dir.join(&rsvd).exists() {
                write_file(dir, &rsvd, &v)?;
            }
        }
        Ok(())
    }
}
