//! What a registry serves for a reference: an image index (manifest list) or a manifest, in OCI or
//! Docker schema 2 form, and the platform choice for this host.

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use super::digest::Digest;
use super::error::{ImageError, Result};

/// Media types crius asks registries for, most preferred first.
pub const ACCEPTED: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

pub enum Fetched {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

/// Classifies a manifest body by its fields, since `mediaType` is optional in OCI documents.
pub fn parse(body: &[u8], digest: &Digest) -> Result<Fetched> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ImageError::Registry(format!("manifest {digest} is not JSON: {e}")))?;
    let bad = |e: serde_json::Error| ImageError::Registry(format!("manifest {digest}: {e}"));
    if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        return Err(ImageError::Unsupported(format!(
            "manifest {digest} is Docker schema 1, which crius does not pull"
        )));
    }
    if value.get("manifests").is_some() {
        serde_json::from_value(value)
            .map(Fetched::Index)
            .map_err(bad)
    } else if value.get("layers").is_some() {
        serde_json::from_value(value)
            .map(Fetched::Manifest)
            .map_err(bad)
    } else {
        Err(ImageError::Unsupported(format!(
            "manifest {digest} is neither an image manifest nor an index"
        )))
    }
}

/// The host platform in OCI terms: (os, architecture, variant).
pub fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    };
    ("linux", arch, variant)
}

/// Picks the manifest for `platform` from an index: os and architecture must match; a variant,
/// when both sides name one, must match too (an entry without a variant fits any).
pub fn select(
    index: &ImageIndex,
    (os, arch, variant): (&str, &str, Option<&str>),
) -> Option<Digest> {
    index
        .manifests()
        .iter()
        .filter(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == os
                    && p.architecture().to_string() == arch
                    && match (p.variant().as_deref(), variant) {
                        (Some(have), Some(want)) => have == want,
                        _ => true,
                    }
            })
        })
        .find_map(|m| Digest::parse(m.digest().as_ref()).ok())
}

/// The parts of an image config the store keeps and checks.
pub struct ConfigSummary {
    pub diff_ids: Vec<Digest>,
    pub user: String,
}

pub fn parse_config(body: &[u8], digest: &Digest) -> Result<ConfigSummary> {
    let config: ImageConfiguration = serde_json::from_slice(body)
        .map_err(|e| ImageError::Registry(format!("image config {digest}: {e}")))?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>>>()?;
    let user = config
        .config()
        .as_ref()
        .and_then(|c| c.user().clone())
        .unwrap_or_default();
    Ok(ConfigSummary { diff_ids, user })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, &str, Option<&str>, char)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(os, arch, variant, c)| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{}", c.to_string().repeat(64)),
                    "size": 1,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    #[test]
    fn index_selects_the_host_architecture() {
        let idx = index(&[
            ("linux", "arm64", Some("v8"), 'a'),
            ("linux", "amd64", None, 'b'),
        ]);
        let chosen = select(&idx, ("linux", "amd64", None)).unwrap();
        assert!(chosen.hex().starts_with('b'));
        let chosen = select(&idx, ("linux", "arm64", Some("v8"))).unwrap();
        assert!(chosen.hex().starts_with('a'));
    }

    #[test]
    fn variant_must_match_when_both_name_one() {
        let idx = index(&[
            ("linux", "arm", Some("v6"), 'a'),
            ("linux", "arm", Some("v7"), 'b'),
        ]);
        let chosen = select(&idx, ("linux", "arm", Some("v7"))).unwrap();
        assert!(chosen.hex().starts_with('b'));
        assert!(select(&idx, ("linux", "amd64", None)).is_none());
        assert!(select(&idx, ("windows", "arm", Some("v7"))).is_none());
    }

    #[test]
    fn schema1_is_refused_clearly() {
        let d = Digest::of(b"x");
        let err = parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, &d)
            .err()
            .unwrap();
        assert!(err.to_string().contains("schema 1"));
    }
}
