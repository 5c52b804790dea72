//! What each runtime handler can do, for RuntimeStatus (the kubelet reads it before it asks for
//! recursive read-only mounts or a pod user namespace) and for RunPodSandbox's checks.
//!
//! A handler's runtime describes itself with the runtime-spec features document (`<runtime>
//! features`; crius' own runtime in-process). A user namespace pod also needs the kernel to
//! id-map the filesystem of crius' store, where the image layers and volumes' sources usually
//! live: crius gives each pod's containers id-mapped layers, and the runtime id-maps volumes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::oci_runtime::OciRuntime;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerFeatures {
    pub recursive_read_only_mounts: bool,
    pub user_namespaces: bool,
}

/// The features of `runtime` (`builtin`: crius' own) on a host where id-mapped mounts of the
/// store work (`idmap_ok`).
pub fn detect(runtime: &OciRuntime, builtin: bool, idmap_ok: bool) -> HandlerFeatures {
    let doc = if builtin {
        Ok(crate::libcontainer::features::features())
    } else {
        document(runtime)
    };
    match doc {
        Ok(doc) => from_document(&doc, idmap_ok),
        Err(e) => {
            tracing::warn!(handler = %runtime.name, "runtime features unknown, none assumed: {e}");
            HandlerFeatures::default()
        }
    }
}

fn document(runtime: &OciRuntime) -> Result<Value, String> {
    let out = Command::new(&runtime.path)
        .args(&runtime.args)
        .arg("features")
        .output()
        .map_err(|e| format!("running {} features: {e}", runtime.path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} features: {}",
            runtime.path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("features document: {e}"))
}

fn from_document(doc: &Value, idmap_ok: bool) -> HandlerFeatures {
    let lists = |v: &Value, item: &str| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(item)))
    };
    let linux = &doc["linux"];
    HandlerFeatures {
        recursive_read_only_mounts: lists(&doc["mountOptions"], "rro"),
        user_namespaces: idmap_ok
            && lists(&linux["namespaces"], "user")
            && linux["mountExtensions"]["idmap"]["enabled"].as_bool() == Some(true),
    }
}

/// Whether id-mapped mounts work on the filesystem holding `dir`, logged once when not.
pub fn idmap_works(dir: &Path) -> bool {
    match crate::userns::idmap::probe(dir) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("pods with user namespaces are not offered: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_come_from_the_document() {
        let doc = serde_json::json!({
            "mountOptions": ["ro", "rro"],
            "linux": {"namespaces": ["user", "net"], "mountExtensions": {"idmap": {"enabled": true}}}
        });
        let all = HandlerFeatures {
            recursive_read_only_mounts: true,
            user_namespaces: true,
        };
        assert_eq!(from_document(&doc, true), all);
        assert!(!from_document(&doc, false).user_namespaces);
        // runc 1.1: no rro, no idmap extension.
        let old = serde_json::json!({"mountOptions": ["ro"], "linux": {"namespaces": ["user"]}});
        assert_eq!(from_document(&old, true), HandlerFeatures::default());
    }

    #[test]
    fn crius_runtime_offers_both_where_the_store_can_be_idmapped() {
        let dir = tempfile::tempdir().unwrap();
        let rt = OciRuntime {
            name: "crius".into(),
            path: "/nonexistent".into(),
            args: vec![],
            root: dir.path().into(),
        };
        let ok = idmap_works(dir.path());
        let f = detect(&rt, true, ok);
        assert!(f.recursive_read_only_mounts);
        assert_eq!(f.user_namespaces, ok);
        // A runtime that cannot describe itself is assumed to offer nothing.
        assert_eq!(detect(&rt, false, true), HandlerFeatures::default());
    }
}
