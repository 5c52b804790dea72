//! v1 `freezer`: freezer.state. Freezing is asynchronous (FREEZING until
//! every task stopped), so freeze polls and re-writes FROZEN like runc: a
//! task forking at the wrong moment can leave the cgroup in FREEZING.

use std::path::Path;
use std::time::Duration;

use super::super::CgroupError;
use super::super::common::{read_file, wait_until, write_file};

const STATE: &str = "freezer.state";

pub(crate) fn freeze(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    write_file(dir, STATE, "FROZEN")?;
    let done = wait_until(timeout, || {
        let s = read_file(dir, STATE)?;
        if s.trim() == "FROZEN" {
            return Ok(true);
        }
        write_file(dir, STATE, "FROZEN")?;
        Ok(false)
    })?;
    if done {
        return Ok(());
    }
    // Leave the container running rather than half frozen.
    let _ = write_file(dir, STATE, "THAWED");
    Err(CgroupError::Timeout {
        path: dir.join(STATE),
        expected: "FROZEN".into(),
    })
}

pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    write_file(dir, STATE, "THAWED")
}
