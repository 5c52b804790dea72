//! Capabilities, seccomp and AppArmor profile selection, masked/readonly paths.
//! SELinux options are ignored (crius does not label).

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxSeccomp};

use super::{SpecError, SpecOptions, invalid, seccomp_default};
use crate::api;
use crate::api::security_profile::ProfileType;
use crate::validate::quote;

/// cri-o's default capability set for non-privileged containers.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "KILL",
];

/// Masked by default (cri-o/containerd list).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Read-only by default.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// "cap_sys_admin", "SYS_ADMIN", "CAP_SYS_ADMIN" → Capability; unknown → InvalidArgument.
pub fn parse_capability(name: &str) -> Result<Capability, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare).map_err(|_| invalid(format!("unknown capability {}", quote(name))))
}

/// The bounding set of this process from /proc/self/status (None if unreadable).
fn own_bounding_mask() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// A privileged container's set: every capability the kernel supports and oci-spec can name,
/// limited (like containerd) to crius' own bounding set — a runtime cannot grant what it lacks,
/// and asking for it makes the container fail to start.
pub fn all_capabilities() -> Capabilities {
    let mask = own_bounding_mask();
    crate::libcontainer::capabilities::all_known()
        .iter()
        .filter(|n| {
            let held = crate::libcontainer::capabilities::parse_capability(n)
                .map(|c| c.index() < 64 && mask.is_none_or(|m| m & (1u64 << c.index()) != 0));
            held.unwrap_or(false)
        })
        .filter_map(|n| parse_capability(n).ok())
        .collect()
}

/// All five sets empty (the pause process).
pub fn no_capabilities() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(HashSet::new()))
        .set_effective(Some(HashSet::new()))
        .set_inheritable(Some(HashSet::new()))
        .set_permitted(Some(HashSet::new()))
        .set_ambient(Some(HashSet::new()));
    c
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

/// Defaults (or everything when privileged), then add/drop with "ALL" handling, then ambient.
/// Added capabilities go to bounding/effective/permitted; ambient ones also to inheritable and
/// ambient (as the CRI comment on `Capability` describes).
pub fn container_capabilities(
    sc: &api::LinuxContainerSecurityContext,
    opts: &SpecOptions,
) -> Result<LinuxCapabilities, SpecError> {
    let mut caps = no_capabilities();
    let mut set: Capabilities = if sc.privileged {
        all_capabilities()
    } else {
        opts.default_capabilities
            .iter()
            .map(|n| parse_capability(n))
            .collect::<Result<_, _>>()?
    };
    let req = sc.capabilities.clone().unwrap_or_default();
    let mut ambient: Capabilities = HashSet::new();
    if !sc.privileged {
        if req.add_capabilities.iter().any(|n| is_all(n)) {
            set = all_capabilities();
        }
        if req.drop_capabilities.iter().any(|n| is_all(n)) {
            set.clear();
        }
        for n in req.add_capabilities.iter().filter(|n| !is_all(n)) {
            set.insert(parse_capability(n)?);
        }
        for n in req.drop_capabilities.iter().filter(|n| !is_all(n)) {
            set.remove(&parse_capability(n)?);
        }
    }
    for n in &req.add_ambient_capabilities {
        let c = parse_capability(n)?;
        set.insert(c);
        ambient.insert(c);
    }
    caps.set_bounding(Some(set.clone()))
        .set_effective(Some(set.clone()))
        .set_permitted(Some(set))
        .set_inheritable(Some(ambient.clone()))
        .set_ambient(Some(ambient));
    Ok(caps)
}

/// Masked and read-only paths: none when privileged, the request's lists when it gives them,
/// else the defaults.
pub fn masked_and_readonly(sc: &api::LinuxContainerSecurityContext) -> (Vec<String>, Vec<String>) {
    if sc.privileged {
        return (Vec::new(), Vec::new());
    }
    let (dm, dr) = default_masked_and_readonly();
    let masked = if sc.masked_paths.is_empty() {
        dm
    } else {
        sc.masked_paths.clone()
    };
    let readonly = if sc.readonly_paths.is_empty() {
        dr
    } else {
        sc.readonly_paths.clone()
    };
    (masked, readonly)
}

pub fn default_masked_and_readonly() -> (Vec<String>, Vec<String>) {
    (
        DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        DEFAULT_READONLY_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

/// A profile choice after merging the SecurityProfile field and the deprecated string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    RuntimeDefault,
    Unconfined,
    Localhost(String),
}

fn from_profile(p: &api::SecurityProfile) -> Result<Choice, SpecError> {
    match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::RuntimeDefault) => Ok(Choice::RuntimeDefault),
        Ok(ProfileType::Unconfined) => Ok(Choice::Unconfined),
        Ok(ProfileType::Localhost) => Ok(Choice::Localhost(p.localhost_ref.clone())),
        Err(_) => Err(invalid(format!("unknown profile type {}", p.profile_type))),
    }
}

/// The deprecated string form: "runtime/default", "docker/default", "unconfined",
/// "localhost/<ref>"; `empty` is the choice for "".
fn from_legacy(s: &str, empty: Choice) -> Result<Choice, SpecError> {
    match s {
        "" => Ok(empty),
        "runtime/default" | "docker/default" => Ok(Choice::RuntimeDefault),
        "unconfined" => Ok(Choice::Unconfined),
        other => match other.strip_prefix("localhost/") {
            Some(r) => Ok(Choice::Localhost(r.to_string())),
            None => Err(invalid(format!(
                "unknown security profile {}",
                quote(other)
            ))),
        },
    }
}

fn choose(
    profile: Option<&api::SecurityProfile>,
    legacy: &str,
    unset: Choice,
) -> Result<Choice, SpecError> {
    match profile {
        Some(p) => from_profile(p),
        None => from_legacy(legacy, unset),
    }
}

/// Read a Localhost seccomp profile (a runtime-spec `linux.seccomp` object).
pub fn load_seccomp_profile(path: &str) -> Result<LinuxSeccomp, SpecError> {
    if !Path::new(path).is_absolute() {
        return Err(invalid(format!(
            "seccomp profile path {} is not absolute",
            quote(path)
        )));
    }
    let data = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            SpecError::NotFound(format!("seccomp profile {}: {e}", quote(path)))
        }
        _ => SpecError::FailedPrecondition(format!("reading seccomp profile {}: {e}", quote(path))),
    })?;
    serde_json::from_slice(&data).map_err(|e| {
        invalid(format!(
            "seccomp profile {} is not a valid profile: {e}",
            quote(path)
        ))
    })
}

fn seccomp_for(choice: Choice, bounding: &Capabilities) -> Result<Option<LinuxSeccomp>, SpecError> {
    match choice {
        Choice::RuntimeDefault => seccomp_default::profile(bounding).map(Some),
        Choice::Unconfined => Ok(None),
        Choice::Localhost(path) => load_seccomp_profile(&path).map(Some),
    }
}

#[allow(deprecated)]
fn legacy_seccomp_container(sc: &api::LinuxContainerSecurityContext) -> &str {
    &sc.seccomp_profile_path
}

#[allow(deprecated)]
fn legacy_seccomp_pod(sc: &api::LinuxSandboxSecurityContext) -> &str {
    &sc.seccomp_profile_path
}

/// A container's seccomp: none when privileged; unset means Unconfined (kubelet always says
/// what it wants).
pub fn container_seccomp(
    sc: &api::LinuxContainerSecurityContext,
    caps: &LinuxCapabilities,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    if sc.privileged {
        return Ok(None);
    }
    let choice = choose(
        sc.seccomp.as_ref(),
        legacy_seccomp_container(sc),
        Choice::Unconfined,
    )?;
    seccomp_for(choice, &caps.bounding().clone().unwrap_or_default())
}

/// The pause process: the runtime default profile unless the pod asks otherwise.
pub fn pause_seccomp(
    psc: &api::LinuxSandboxSecurityContext,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    let choice = choose(
        psc.seccomp.as_ref(),
        legacy_seccomp_pod(psc),
        Choice::RuntimeDefault,
    )?;
    seccomp_for(choice, &HashSet::new())
}

/// process.apparmorProfile: the profile name for Localhost on an AppArmor host; nothing for
/// RuntimeDefault/Unconfined or privileged containers. Localhost without AppArmor is refused.
pub fn apparmor_profile(
    profile: Option<&api::SecurityProfile>,
    legacy: &str,
    privileged: bool,
    opts: &SpecOptions,
) -> Result<Option<String>, SpecError> {
    if privileged {
        return Ok(None);
    }
    match choose(profile, legacy, Choice::RuntimeDefault)? {
        Choice::Localhost(name) if !opts.apparmor_enabled => {
            Err(SpecError::FailedPrecondition(format!(
                "AppArmor is not enabled on this host (profile {} requested)",
                quote(&name)
            )))
        }
        Choice::Localhost(name) if name.is_empty() => {
            Err(invalid("AppArmor Localhost profile without a name"))
        }
        Choice::Localhost(name) => Ok(Some(name)),
        Choice::RuntimeDefault | Choice::Unconfined => Ok(None),
    }
}
