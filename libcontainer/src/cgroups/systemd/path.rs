//! The systemd form of `linux.cgroupsPath`, `"<slice>:<prefix>:<name>"` (runc's convention),
//! and where systemd puts the resulting unit in the cgroup tree. Pure string work, so the
//! daemon can map a path without talking to systemd.

use super::super::CgroupError;

/// The slice a unit goes to when the path leaves it empty (runc's default).
pub const DEFAULT_SLICE: &str = "system.slice";
/// The prefix `crius oci` uses for a container without `linux.cgroupsPath`.
pub const DEFAULT_PREFIX: &str = "crius";

/// systemd's limit on a unit name's length (UNIT_NAME_MAX).
const UNIT_NAME_MAX: usize = 255;

/// A resolved systemd cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdPath {
    /// The parent slice (`system.slice` when the path left it empty). For a slice unit, the
    /// slice its name implies.
    pub slice: String,
    /// The unit crius creates: `<prefix>-<name>.scope`, or a `.slice`.
    pub unit: String,
    /// The unit's cgroup relative to the hierarchy root, absolute form:
    /// `/kubepods.slice/kubepods-burstable.slice/…/crius-<id>.scope`.
    pub cgroup_path: String,
}

impl SystemdPath {
    /// Whether the unit is a slice (no processes of its own in systemd's model; the container
    /// joins its cgroup by path).
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
}

fn invalid(path: &str, reason: &'static str) -> CgroupError {
    CgroupError::InvalidPath {
        path: path.to_string(),
        reason,
    }
}

/// Characters systemd accepts in a unit name (besides the type suffix's dot).
fn valid_unit_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'\\'))
}

/// systemd's slice expansion: every `-`-separated prefix of the name is a parent slice, so
/// `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root (`/`).
pub fn expand_slice(slice: &str) -> Result<String, CgroupError> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(invalid(slice, "a slice name must end in \".slice\""));
    };
    if slice == "-.slice" {
        return Ok("/".to_string());
    }
    if stem.is_empty() || !valid_unit_chars(stem) || slice.len() > UNIT_NAME_MAX {
        return Err(invalid(
            slice,
            "a slice name is [A-Za-z0-9_.@\\-]+ followed by \".slice\"",
        ));
    }
    if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(invalid(
            slice,
            "a slice name may not start or end with '-' or contain \"--\"",
        ));
    }
    let mut out = String::new();
    for (i, _) in stem.match_indices('-') {
        out.push('/');
        out.push_str(&stem[..i]);
        out.push_str(".slice");
    }
    out.push('/');
    out.push_str(slice);
    Ok(out)
}

/// A pod's cgroup parent under the systemd driver, as a slice name: either the name itself
/// (`kubepods-burstable-pod1.slice`) or its expansion, which is what a kubelet with
/// `cgroupDriver: systemd` sends (`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice`,
/// its cgroup manager's `Name`). The expansion must be the last component's own: systemd
/// places a slice by its name alone, so any other path could not be honoured.
pub fn slice_of_parent(parent: &str) -> Result<String, CgroupError> {
    if !parent.contains('/') {
        expand_slice(parent)?;
        return Ok(parent.to_string());
    }
    let trimmed = parent.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or_default();
    if expand_slice(name)? != trimmed {
        return Err(invalid(
            parent,
            "a slice path must be the expansion of its last component (/a.slice/a-b.slice)",
        ));
    }
    Ok(name.to_string())
}

/// Whether `cgroups_path` is in the systemd form (`slice:prefix:name`) rather than a path.
pub fn is_systemd_form(cgroups_path: &str) -> bool {
    !cgroups_path.starts_with('/') && cgroups_path.split(':').count() == 3
}

/// Resolves `"<slice>:<prefix>:<name>"`:
/// - empty slice: [`DEFAULT_SLICE`];
/// - `<name>` ending in `.slice`: that slice is the unit (runc), placed where its own name says;
/// - otherwise the unit is the scope `<prefix>-<name>.scope`, or with an empty prefix `<name>`
///   itself (`.scope` appended when it has no unit suffix).
pub fn expand(cgroups_path: &str) -> Result<SystemdPath, CgroupError> {
    let parts: Vec<&str> = cgroups_path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(
            cgroups_path,
            "the systemd cgroup driver takes \"<slice>:<prefix>:<name>\"",
        ));
    };
    if name.is_empty() {
        return Err(invalid(
            cgroups_path,
            "the unit name (third field) is empty",
        ));
    }
    if !valid_unit_chars(name) || (!prefix.is_empty() && !valid_unit_chars(prefix)) {
        return Err(invalid(
            cgroups_path,
            "prefix and name may only hold [A-Za-z0-9_.@\\-] (no '/')",
        ));
    }
    if name.ends_with(".slice") {
        let cgroup_path = expand_slice(name)?;
        let implied = implied_parent(name);
        if !slice.is_empty() && slice != implied {
            return Err(invalid(
                cgroups_path,
                "a slice unit's parent is given by its name; the slice field must be empty or that parent",
            ));
        }
        return Ok(SystemdPath {
            slice: implied,
            unit: name.to_string(),
            cgroup_path,
        });
    }
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let parent = expand_slice(slice)?;
    let unit = if prefix.is_empty() {
        if name.ends_with(".scope") {
            name.to_string()
        } else {
            format!("{name}.scope")
        }
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit.len() > UNIT_NAME_MAX {
        return Err(invalid(
            cgroups_path,
            "the unit name is longer than 255 bytes",
        ));
    }
    let cgroup_path = if parent == "/" {
        format!("/{unit}")
    } else {
        format!("{parent}/{unit}")
    };
    Ok(SystemdPath {
        slice: slice.to_string(),
        unit,
        cgroup_path,
    })
}

/// The parent slice systemd derives from a slice's name (`a-b.slice` → `a.slice`, `a.slice` →
/// `-.slice`).
fn implied_parent(slice: &str) -> String {
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    match stem.rfind('-') {
        Some(i) => format!("{}.slice", &stem[..i]),
        None => "-.slice".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_slice_paths_become_slice_names() {
        assert_eq!(
            slice_of_parent("kubepods-burstable-pod1.slice").unwrap(),
            "kubepods-burstable-pod1.slice"
        );
        assert_eq!(
            slice_of_parent(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice"
            )
            .unwrap(),
            "kubepods-burstable-pod1_2.slice"
        );
        assert_eq!(
            slice_of_parent("/kubepods.slice/kubepods-pod3.slice/").unwrap(),
            "kubepods-pod3.slice"
        );
        assert_eq!(slice_of_parent("/a.slice").unwrap(), "a.slice");
        // A path that is not the name's expansion, and names that are not slices.
        assert!(slice_of_parent("/other.slice/kubepods-pod3.slice").is_err());
        assert!(slice_of_parent("/kubepods.slice/x/kubepods-pod3.slice").is_err());
        assert!(slice_of_parent("/kubepods.slice/kubepods-pod3").is_err());
        assert!(slice_of_parent("kubepods").is_err());
        assert!(slice_of_parent("/").is_err());
    }

    #[test]
    fn slices_expand_like_systemd() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("kubepods-burstable-pod1234.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice"
        );
        assert_eq!(
            expand_slice("a_b-c.d.slice").unwrap(),
            "/a_b.slice/a_b-c.d.slice"
        );
        for bad in [
            "",
            "system",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            "a b.slice",
            "kubepods.slice.x",
        ] {
            assert!(
                matches!(expand_slice(bad), Err(CgroupError::InvalidPath { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(expand_slice(&format!("{}.slice", "a".repeat(250))).is_err());
    }

    #[test]
    fn scopes_go_under_their_slice() {
        let p = expand("kubepods-burstable-pod1234.slice:crius:abcd").unwrap();
        assert_eq!(p.slice, "kubepods-burstable-pod1234.slice");
        assert_eq!(p.unit, "crius-abcd.scope");
        assert_eq!(
            p.cgroup_path,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/crius-abcd.scope"
        );
        assert!(!p.is_slice());
        let p = expand(":crius:abcd").unwrap();
        assert_eq!(p.slice, "system.slice");
        assert_eq!(p.cgroup_path, "/system.slice/crius-abcd.scope");
        let p = expand("-.slice:crius:x").unwrap();
        assert_eq!(p.cgroup_path, "/crius-x.scope");
    }

    #[test]
    fn empty_prefix_uses_the_name() {
        let p = expand("system.slice::my.scope").unwrap();
        assert_eq!(p.unit, "my.scope");
        assert_eq!(p.cgroup_path, "/system.slice/my.scope");
        assert_eq!(expand("system.slice::ctr").unwrap().unit, "ctr.scope");
    }

    #[test]
    fn slice_units_follow_their_name() {
        let p = expand("::kubepods-pod1.slice").unwrap();
        assert!(p.is_slice());
        assert_eq!(p.unit, "kubepods-pod1.slice");
        assert_eq!(p.slice, "kubepods.slice");
        assert_eq!(p.cgroup_path, "/kubepods.slice/kubepods-pod1.slice");
        assert!(expand("kubepods.slice:crius:kubepods-pod1.slice").is_ok());
        assert_eq!(expand(":x:top.slice").unwrap().slice, "-.slice");
        assert!(matches!(
            expand("system.slice::kubepods-pod1.slice"),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for bad in [
            "system.slice:crius",
            "a:b:c:d",
            "system.slice:crius:",
            "system.slice:cr/ius:x",
            "system.slice:crius:a/b",
            "system:crius:x",
            "a--b.slice:crius:x",
            "system.slice:crius:x y",
        ] {
            assert!(
                matches!(expand(bad), Err(CgroupError::InvalidPath { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(is_systemd_form("system.slice:crius:x"));
        assert!(is_systemd_form("::x"));
        assert!(!is_systemd_form("/a:b:c"));
        assert!(!is_systemd_form("/crius/x"));
    }
}
