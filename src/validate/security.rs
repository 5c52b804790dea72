//! Security contexts of pods and containers: the forms of their values (ids in range,
//! capability names, profile references, namespace modes, paths), checked before anything is
//! created. Whether a named profile file exists or AppArmor is enabled is a property of the
//! host, not of the request: spec generation (`oci/security.rs`) still answers those.

use std::str::FromStr;

use oci_spec::runtime::Capability;

use super::fields::{PATH_BYTES, bounded_text, no_nul, path};
use super::{Invalid, invalid, quote};
use crate::api;

/// The largest uid or gid: `(uid_t)-1` means "no change" to the kernel.
const MAX_ID: i64 = u32::MAX as i64 - 1;
/// The kernel's NGROUPS_MAX.
const MAX_SUPPLEMENTAL_GROUPS: usize = 65_536;
/// Bounds on lists a kubelet keeps short (the default masked list has 11 paths).
const MAX_PATHS: usize = 1024;
const MAX_CAPABILITIES: usize = 256;
/// A user name (`run_as_username`) as useradd allows it, with room.
const USERNAME_BYTES: usize = 256;
/// One SELinux context field.
const SELINUX_FIELD_BYTES: usize = 255;

/// A pod's `linux.security_context`.
pub fn pod_security_context(sc: &api::LinuxSandboxSecurityContext) -> Result<(), Invalid> {
    let field = "linux.security_context";
    if let Some(ns) = &sc.namespace_options {
        namespace_options(&format!("{field}.namespace_options"), ns)?;
    }
    if let Some(se) = &sc.selinux_options {
        selinux(&format!("{field}.selinux_options"), se)?;
    }
    ids(
        field,
        sc.run_as_user.as_ref(),
        sc.run_as_group.as_ref(),
        &sc.supplemental_groups,
    )?;
    groups_policy(field, sc.supplemental_groups_policy)?;
    profile(
        &format!("{field}.seccomp"),
        sc.seccomp.as_ref(),
        Kind::Seccomp,
    )?;
    profile(
        &format!("{field}.apparmor"),
        sc.apparmor.as_ref(),
        Kind::AppArmor,
    )?;
    #[allow(deprecated)]
    legacy_profile(
        &format!("{field}.seccomp_profile_path"),
        &sc.seccomp_profile_path,
        Kind::Seccomp,
    )
}

/// A container's `linux.security_context`.
pub fn container_security_context(sc: &api::LinuxContainerSecurityContext) -> Result<(), Invalid> {
    let field = "linux.security_context";
    if let Some(caps) = &sc.capabilities {
        capabilities(&format!("{field}.capabilities"), caps)?;
    }
    if let Some(ns) = &sc.namespace_options {
        namespace_options(&format!("{field}.namespace_options"), ns)?;
    }
    if let Some(se) = &sc.selinux_options {
        selinux(&format!("{field}.selinux_options"), se)?;
    }
    ids(
        field,
        sc.run_as_user.as_ref(),
        sc.run_as_group.as_ref(),
        &sc.supplemental_groups,
    )?;
    user_name(&format!("{field}.run_as_username"), &sc.run_as_username)?;
    groups_policy(field, sc.supplemental_groups_policy)?;
    path_list(&format!("{field}.masked_paths"), &sc.masked_paths)?;
    path_list(&format!("{field}.readonly_paths"), &sc.readonly_paths)?;
    profile(
        &format!("{field}.seccomp"),
        sc.seccomp.as_ref(),
        Kind::Seccomp,
    )?;
    profile(
        &format!("{field}.apparmor"),
        sc.apparmor.as_ref(),
        Kind::AppArmor,
    )?;
    #[allow(deprecated)]
    let (seccomp, apparmor) = (&sc.seccomp_profile_path, &sc.apparmor_profile);
    legacy_profile(
        &format!("{field}.seccomp_profile_path"),
        seccomp,
        Kind::Seccomp,
    )?;
    legacy_profile(
        &format!("{field}.apparmor_profile"),
        apparmor,
        Kind::AppArmor,
    )
}

/// "cap_sys_admin", "SYS_ADMIN", "CAP_SYS_ADMIN" name a capability; "ALL" may be added or
/// dropped, not made ambient.
fn capabilities(field: &str, caps: &api::Capability) -> Result<(), Invalid> {
    let lists = [
        ("add_capabilities", &caps.add_capabilities, true),
        ("drop_capabilities", &caps.drop_capabilities, true),
        (
            "add_ambient_capabilities",
            &caps.add_ambient_capabilities,
            false,
        ),
    ];
    for (name, list, all_allowed) in lists {
        let field = format!("{field}.{name}");
        if list.len() > MAX_CAPABILITIES {
            return Err(invalid(
                &field,
                format!("{} names, more than {MAX_CAPABILITIES}", list.len()),
            ));
        }
        for cap in list {
            let upper = cap.trim().to_ascii_uppercase();
            if all_allowed && upper == "ALL" {
                continue;
            }
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            if cap.len() > 64 || Capability::from_str(bare).is_err() {
                return Err(invalid(
                    &field,
                    format!("unknown capability {}", quote(cap)),
                ));
            }
        }
    }
    Ok(())
}

fn namespace_options(field: &str, ns: &api::NamespaceOption) -> Result<(), Invalid> {
    for (name, mode) in [("network", ns.network), ("pid", ns.pid), ("ipc", ns.ipc)] {
        if api::NamespaceMode::try_from(mode).is_err() {
            return Err(invalid(
                &format!("{field}.{name}"),
                format!("{mode} is not a namespace mode"),
            ));
        }
    }
    if ns.pid == api::NamespaceMode::Target as i32 {
        super::id(&format!("{field}.target_id"), &ns.target_id)?;
    }
    if let Some(userns) = &ns.userns_options
        && api::NamespaceMode::try_from(userns.mode).is_err()
    {
        return Err(invalid(
            &format!("{field}.userns_options.mode"),
            format!("{} is not a namespace mode", userns.mode),
        ));
    }
    Ok(())
}

/// Each part of an SELinux context: short, printable, and no `:` (which separates the parts),
/// except in the level (`s0:c1,c2`).
fn selinux(field: &str, se: &api::SeLinuxOption) -> Result<(), Invalid> {
    for (name, value, colon_ok) in [
        ("user", &se.user, false),
        ("role", &se.role, false),
        ("type", &se.r#type, false),
        ("level", &se.level, true),
    ] {
        let field = format!("{field}.{name}");
        printable(&field, value, SELINUX_FIELD_BYTES)?;
        if !colon_ok && value.contains(':') {
            return Err(invalid(&field, format!("{} contains ':'", quote(value))));
        }
    }
    Ok(())
}

fn ids(
    field: &str,
    user: Option<&api::Int64Value>,
    group: Option<&api::Int64Value>,
    supplemental: &[i64],
) -> Result<(), Invalid> {
    for (name, value) in [("run_as_user", user), ("run_as_group", group)] {
        if let Some(v) = value {
            one_id(&format!("{field}.{name}"), v.value)?;
        }
    }
    if supplemental.len() > MAX_SUPPLEMENTAL_GROUPS {
        return Err(invalid(
            &format!("{field}.supplemental_groups"),
            format!(
                "{} groups, more than {MAX_SUPPLEMENTAL_GROUPS}",
                supplemental.len()
            ),
        ));
    }
    for (i, gid) in supplemental.iter().enumerate() {
        one_id(&format!("{field}.supplemental_groups[{i}]"), *gid)?;
    }
    Ok(())
}

fn one_id(field: &str, value: i64) -> Result<(), Invalid> {
    if !(0..=MAX_ID).contains(&value) {
        return Err(invalid(field, format!("{value} is not in 0..={MAX_ID}")));
    }
    Ok(())
}

fn user_name(field: &str, value: &str) -> Result<(), Invalid> {
    printable(field, value, USERNAME_BYTES)?;
    if value.contains(['/', ':']) || value.chars().any(char::is_whitespace) {
        return Err(invalid(
            field,
            format!("{} is not a user name", quote(value)),
        ));
    }
    Ok(())
}

fn groups_policy(field: &str, policy: i32) -> Result<(), Invalid> {
    if api::SupplementalGroupsPolicy::try_from(policy).is_err() {
        return Err(invalid(
            &format!("{field}.supplemental_groups_policy"),
            format!("{policy} is not a policy"),
        ));
    }
    Ok(())
}

fn path_list(field: &str, paths: &[String]) -> Result<(), Invalid> {
    if paths.len() > MAX_PATHS {
        return Err(invalid(
            field,
            format!("{} paths, more than {MAX_PATHS}", paths.len()),
        ));
    }
    for (i, p) in paths.iter().enumerate() {
        path(&format!("{field}[{i}]"), p, true)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Seccomp,
    AppArmor,
}

/// A `SecurityProfile`: a known type; a Localhost one names a profile — for seccomp an
/// absolute file path, for AppArmor a profile name.
fn profile(field: &str, p: Option<&api::SecurityProfile>, kind: Kind) -> Result<(), Invalid> {
    let Some(p) = p else {
        return Ok(());
    };
    match api::security_profile::ProfileType::try_from(p.profile_type) {
        Ok(api::security_profile::ProfileType::Localhost) => {
            localhost_ref(&format!("{field}.localhost_ref"), &p.localhost_ref, kind)
        }
        Ok(_) => Ok(()),
        Err(_) => Err(invalid(
            &format!("{field}.profile_type"),
            format!("{} is not a profile type", p.profile_type),
        )),
    }
}

fn localhost_ref(field: &str, value: &str, kind: Kind) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(invalid(field, "a Localhost profile must name its profile"));
    }
    match kind {
        Kind::Seccomp => path(field, value, true),
        Kind::AppArmor => printable(field, value, PATH_BYTES),
    }
}

/// The deprecated string forms: "", "runtime/default", "docker/default", "unconfined",
/// "localhost/<ref>".
fn legacy_profile(field: &str, value: &str, kind: Kind) -> Result<(), Invalid> {
    match value {
        "" | "runtime/default" | "docker/default" | "unconfined" => Ok(()),
        other => match other.strip_prefix("localhost/") {
            Some(reference) => localhost_ref(field, reference, kind),
            None => Err(invalid(
                field,
                format!("{} is not a security profile", quote(other)),
            )),
        },
    }
}

/// At most `max` bytes with no control characters (NUL, newline, ...).
fn printable(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    bounded_text(field, value, max)?;
    if value.contains(|c: char| c.is_control()) {
        return Err(invalid(
            field,
            format!("{} contains a control character", quote(value)),
        ));
    }
    no_nul(field, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> api::LinuxContainerSecurityContext {
        api::LinuxContainerSecurityContext {
            capabilities: Some(api::Capability {
                add_capabilities: vec!["NET_ADMIN".into(), "cap_sys_time".into()],
                drop_capabilities: vec!["ALL".into()],
                add_ambient_capabilities: vec!["CAP_NET_BIND_SERVICE".into()],
            }),
            run_as_user: Some(api::Int64Value { value: 1000 }),
            run_as_group: Some(api::Int64Value { value: 1000 }),
            supplemental_groups: vec![0, 65534],
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            seccomp: Some(api::SecurityProfile {
                profile_type: api::security_profile::ProfileType::Localhost as i32,
                localhost_ref: "/var/lib/kubelet/seccomp/audit.json".into(),
            }),
            apparmor: Some(api::SecurityProfile {
                profile_type: api::security_profile::ProfileType::RuntimeDefault as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_kubelet_security_context_passes() {
        assert_eq!(container_security_context(&container()), Ok(()));
        assert_eq!(
            pod_security_context(&api::LinuxSandboxSecurityContext::default()),
            Ok(())
        );
    }

    #[test]
    #[allow(deprecated)]
    fn each_bad_security_field_is_named() {
        type Edit = Box<dyn Fn(&mut api::LinuxContainerSecurityContext)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "linux.security_context.capabilities.add_capabilities",
                Box::new(|c| {
                    c.capabilities.as_mut().unwrap().add_capabilities = vec!["CAP_FLY".into()]
                }),
            ),
            (
                "linux.security_context.capabilities.add_ambient_capabilities",
                Box::new(|c| {
                    c.capabilities.as_mut().unwrap().add_ambient_capabilities = vec!["ALL".into()]
                }),
            ),
            (
                "linux.security_context.run_as_user",
                Box::new(|c| c.run_as_user = Some(api::Int64Value { value: -1 })),
            ),
            (
                "linux.security_context.run_as_group",
                Box::new(|c| c.run_as_group = Some(api::Int64Value { value: 1 << 32 })),
            ),
            (
                "linux.security_context.supplemental_groups[1]",
                Box::new(|c| c.supplemental_groups = vec![1, -5]),
            ),
            (
                "linux.security_context.run_as_username",
                Box::new(|c| c.run_as_username = "ro\not".into()),
            ),
            (
                "linux.security_context.masked_paths[0]",
                Box::new(|c| c.masked_paths = vec!["proc/kcore".into()]),
            ),
            (
                "linux.security_context.readonly_paths[0]",
                Box::new(|c| c.readonly_paths = vec!["/proc/\0sys".into()]),
            ),
            (
                "linux.security_context.seccomp.localhost_ref",
                Box::new(|c| c.seccomp.as_mut().unwrap().localhost_ref = "audit.json".into()),
            ),
            (
                "linux.security_context.seccomp.profile_type",
                Box::new(|c| c.seccomp.as_mut().unwrap().profile_type = 7),
            ),
            (
                "linux.security_context.apparmor.localhost_ref",
                Box::new(|c| {
                    *c.apparmor.as_mut().unwrap() = api::SecurityProfile {
                        profile_type: api::security_profile::ProfileType::Localhost as i32,
                        localhost_ref: String::new(),
                    }
                }),
            ),
            (
                "linux.security_context.seccomp_profile_path",
                Box::new(|c| c.seccomp_profile_path = "docker/strict".into()),
            ),
            (
                "linux.security_context.apparmor_profile",
                Box::new(|c| c.apparmor_profile = "localhost/".into()),
            ),
            (
                "linux.security_context.namespace_options.pid",
                Box::new(|c| {
                    c.namespace_options = Some(api::NamespaceOption {
                        pid: 9,
                        ..Default::default()
                    })
                }),
            ),
            (
                "linux.security_context.selinux_options.type",
                Box::new(|c| {
                    c.selinux_options = Some(api::SeLinuxOption {
                        r#type: "container_t:s0".into(),
                        ..Default::default()
                    })
                }),
            ),
            (
                "linux.security_context.supplemental_groups_policy",
                Box::new(|c| c.supplemental_groups_policy = 5),
            ),
        ];
        for (field, break_it) in cases {
            let mut c = container();
            break_it(&mut c);
            let err = container_security_context(&c).unwrap_err().0;
            assert!(err.starts_with(field), "{field}: {err}");
            assert!(err.len() < 300, "{field}: {} bytes", err.len());
        }
    }

    #[test]
    fn a_pod_with_a_bad_seccomp_string_or_user_is_refused() {
        #[allow(deprecated)]
        let sc = api::LinuxSandboxSecurityContext {
            seccomp_profile_path: "localhost/relative.json".into(),
            ..Default::default()
        };
        let err = pod_security_context(&sc).unwrap_err().0;
        assert!(
            err.starts_with("linux.security_context.seccomp_profile_path"),
            "{err}"
        );
        let sc = api::LinuxSandboxSecurityContext {
            run_as_user: Some(api::Int64Value { value: i64::MAX }),
            ..Default::default()
        };
        let err = pod_security_context(&sc).unwrap_err().0;
        assert!(
            err.starts_with("linux.security_context.run_as_user"),
            "{err}"
        );
    }
}
