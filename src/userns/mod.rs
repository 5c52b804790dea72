//! User namespaces for pods (`userns_options` mode POD): the CRI's id mappings checked once,
//! a short-lived process that creates the namespaces ([`NsChild`]), and id-mapped mounts
//! ([`idmap`]) that let the container's root own its image files without copying them.

pub mod idmap;

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

use crate::api::{self, NamespaceMode};
use crate::libcontainer::rootfs::idmap::map_text;

pub use crate::libcontainer::process::ns_child::{ChildError, NsChild};

/// Most lines a uid_map or gid_map may have (the kernel's limit).
const MAX_MAP_LINES: usize = 340;

/// Why a request's user namespace options are refused.
#[derive(Debug, thiserror::Error)]
#[error("user namespace: {0}")]
pub struct UsernsError(String);

/// A pod's validated uid and gid mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uids: Vec<api::IdMapping>,
    pub gids: Vec<api::IdMapping>,
}

impl IdMaps {
    /// The mappings a pod asks for: `None` for mode NODE (or no options), an error for modes a
    /// pod cannot have or for mappings the kernel would refuse.
    pub fn from_options(opts: Option<&api::UserNamespace>) -> Result<Option<IdMaps>, UsernsError> {
        let Some(u) = opts else { return Ok(None) };
        match NamespaceMode::try_from(u.mode) {
            Ok(NamespaceMode::Node) => {
                if u.uids.is_empty() && u.gids.is_empty() {
                    Ok(None)
                } else {
                    Err(UsernsError("mode NODE takes no uid/gid mappings".into()))
                }
            }
            Ok(NamespaceMode::Pod) => {
                check("uid", &u.uids, true)?;
                check("gid", &u.gids, true)?;
                Ok(Some(IdMaps {
                    uids: u.uids.clone(),
                    gids: u.gids.clone(),
                }))
            }
            _ => Err(UsernsError(format!(
                "mode {} is not supported (POD or NODE)",
                u.mode
            ))),
        }
    }

    /// A mount's own mappings (root need not be mapped); `None` when it has none.
    pub fn for_mount(
        uids: &[api::IdMapping],
        gids: &[api::IdMapping],
    ) -> Result<Option<IdMaps>, UsernsError> {
        if uids.is_empty() && gids.is_empty() {
            return Ok(None);
        }
        check("uid", uids, false)?;
        check("gid", gids, false)?;
        Ok(Some(IdMaps {
            uids: uids.to_vec(),
            gids: gids.to_vec(),
        }))
    }

    /// Host uid and gid of the container's root.
    pub fn host_root(&self) -> (u32, u32) {
        (host_of_root(&self.uids), host_of_root(&self.gids))
    }

    /// `/proc/<pid>/uid_map` text.
    pub fn uid_map_text(&self) -> String {
        map_text(&oci_maps(&self.uids))
    }

    /// `/proc/<pid>/gid_map` text.
    pub fn gid_map_text(&self) -> String {
        map_text(&oci_maps(&self.gids))
    }

    /// The mappings as runtime-spec `linux.uidMappings` / `gidMappings`.
    pub fn to_oci(&self) -> (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>) {
        (oci_maps(&self.uids), oci_maps(&self.gids))
    }
}

/// Root must be mapped (the kubelet always maps it); ranges must be non-empty, not wrap and not
/// overlap on either side.
fn check(kind: &str, maps: &[api::IdMapping], need_root: bool) -> Result<(), UsernsError> {
    if maps.is_empty() {
        return Err(UsernsError(format!("mode POD needs {kind} mappings")));
    }
    if maps.len() > MAX_MAP_LINES {
        return Err(UsernsError(format!(
            "{} {kind} mappings, at most {MAX_MAP_LINES}",
            maps.len()
        )));
    }
    let end = |start: u32, len: u32| u64::from(start) + u64::from(len);
    for (i, m) in maps.iter().enumerate() {
        if m.length == 0 {
            return Err(UsernsError(format!("{kind} mapping {i} has length 0")));
        }
        if end(m.host_id, m.length) > u64::from(u32::MAX) + 1
            || end(m.container_id, m.length) > u64::from(u32::MAX) + 1
        {
            return Err(UsernsError(format!(
                "{kind} mapping {i} runs past the last id"
            )));
        }
        let overlap = |a: u32, b: u32, n: &api::IdMapping| {
            u64::from(a) < end(b, n.length) && u64::from(b) < end(a, m.length)
        };
        if maps[..i]
            .iter()
            .any(|n| overlap(m.host_id, n.host_id, n) || overlap(m.container_id, n.container_id, n))
        {
            return Err(UsernsError(format!("{kind} mappings overlap")));
        }
    }
    if need_root && !maps.iter().any(|m| m.container_id == 0) {
        return Err(UsernsError(format!("{kind} 0 (root) must be mapped")));
    }
    Ok(())
}

fn host_of_root(maps: &[api::IdMapping]) -> u32 {
    maps.iter()
        .find(|m| m.container_id == 0)
        .map_or(0, |m| m.host_id)
}

fn oci_maps(maps: &[api::IdMapping]) -> Vec<LinuxIdMapping> {
    maps.iter()
        .filter_map(|m| {
            LinuxIdMappingBuilder::default()
                .container_id(m.container_id)
                .host_id(m.host_id)
                .size(m.length)
                .build()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests;
