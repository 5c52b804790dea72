//! Normalised device-cgroup rules shared by the v1 (devices.allow/deny) and
//! v2 (eBPF) device controllers.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DevKind {
    All,
    Char,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    pub kind: DevKind,
    /// `None` = any ("*").
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Bitmask of ACC_* (kernel's BPF_DEVCG_ACC_* values).
    pub access: u8,
}

impl DeviceRule {
    /// `a *:* rwm`: matches every device and access.
    pub fn is_wildcard(&self) -> bool {
        self.kind == DevKind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }

    pub fn access_string(&self) -> String {
        let mut s = String::new();
        if self.access & ACC_READ != 0 {
            s.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            s.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            s.push('m');
        }
        s
    }
}

fn number(v: Option<i64>, what: &str) -> Result<Option<u32>, CgroupError> {
    match v {
        // Negative numbers are how some spec generators spell "*".
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        // Linux majors/minors are < 2^20; bigger cannot match and would not
        // fit the BPF immediate, so reject them.
        Some(n) if n <= i32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(CgroupError::InvalidResource(format!(
            "device {what} number {n} out of range"
        ))),
    }
}

/// Converts the OCI list; FIFO rules are dropped because device cgroups
/// only govern block and character devices.
pub(crate) fn normalise(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevKind::All,
            // 'u' (unbuffered char) is a character device for the kernel.
            LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
            LinuxDeviceType::B => DevKind::Block,
            LinuxDeviceType::P => continue,
        };
        let access = match r.access().as_deref() {
            // No access list means every access, so "deny" with no access
            // denies everything, as users expect.
            None | Some("") => ACC_ALL,
            Some(s) => {
                let mut a = 0;
                for ch in s.chars() {
                    a |= match ch {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        _ => {
                            return Err(CgroupError::InvalidResource(format!(
                                "device rule access {s:?}: only r, w and m are allowed"
                            )));
                        }
                    };
                }
                a
            }
        };
        out.push(DeviceRule {
            allow: r.allow(),
            kind,
            major: number(r.major(), "major")?,
            minor: number(r.minor(), "minor")?,
            access,
        });
    }
    Ok(out)
}
