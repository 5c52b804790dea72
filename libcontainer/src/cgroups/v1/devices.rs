//! v1 `devices`: reset to deny-all by writing "a" to devices.deny, then
//! replay the rules in order (as runc does), each as one write to
//! devices.allow or devices.deny.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_entry;
use super::super::device_rules::{DevKind, DeviceRule, normalise};
use super::{Controller, Subsystem};

pub(crate) struct Devices;

impl Controller for Devices {
    const SUBSYSTEM: Subsystem = Subsystem::Devices;

    fn needs(r: &LinuxResources) -> bool {
        r.devices().is_some()
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(rules) = r.devices() else {
            return Ok(());
        };
        let rules = normalise(rules)?;
        write_entry(dir, "devices.deny", "a")?;
        for rule in &rules {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            for line in v1_lines(rule) {
                write_entry(dir, file, &line)?;
            }
        }
        Ok(())
    }
}

/// Kernel strings for one rule. v1 treats *any* rule of type `a` as
/// "allow/deny everything", ignoring numbers and access, so a narrower `a`
/// rule is split into its `c` and `b` halves to keep its meaning.
pub(crate) fn v1_lines(rule: &DeviceRule) -> Vec<String> {
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |v| v.to_string());
    let line = |t: &str| {
        format!(
            "{t} {}:{} {}",
            num(rule.major),
            num(rule.minor),
            rule.access_string()
        )
    };
    match rule.kind {
        DevKind::All if rule.is_wildcard() => vec!["a".to_string()],
        DevKind::All => vec![line("c"), line("b")],
        DevKind::Char => vec![line("c")],
        DevKind::Block => vec![line("b")],
    }
}
