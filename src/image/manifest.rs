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

const INDEX_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_MEDIA_TYPES: &[&str] = &[
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
    let declared = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let is_index = value.get("manifests").is_some();
    let is_manifest = value.get("layers").is_some() || value.get("config").is_some();
    // A document claiming to be one kind while shaped as the other is refused, as containerd
    // refuses it: a client trusting the media type would read it differently from us.
    let contradicts = (is_index && (is_manifest || MANIFEST_MEDIA_TYPES.contains(&declared)))
        || (is_manifest && INDEX_MEDIA_TYPES.contains(&declared));
    if contradicts {
        let declared: String = declared.chars().take(100).collect();
        return Err(ImageError::Verification {
            digest: digest.to_string(),
            message: format!(
                "manifest says its media type is {declared:?} but it has the fields of {}",
                if is_index {
                    "an index"
                } else {
                    "an image manifest"
                }
            ),
        });
    }
    if is_index {
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
/// when both sides name one, must match too (an entry without a variant fits any). Entries
/// whose media type is not an image manifest's (a nested index, an artifact) are passed over.
/// The digest and the size the index declares for it.
pub fn select(
    index: &ImageIndex,
    (os, arch, variant): (&str, &str, Option<&str>),
) -> Option<(Digest, u64)> {
    index
        .manifests()
        .iter()
        .filter(|m| MANIFEST_MEDIA_TYPES.contains(&m.media_type().to_string().as_str()))
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
        .find_map(|m| {
            Digest::parse(m.digest().as_ref())
                .ok()
                .map(|d| (d, m.size()))
        })
}

/// Media types of an image config: a manifest whose config is anything else describes an
/// artifact (a Helm chart, a signature), not a container image.
const CONFIG_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// What a manifest's config descriptor promises and the blob must keep: an image config media
/// type, and the blob's exact size (its digest is checked as it is fetched).
pub fn check_config_descriptor(
    media_type: &str,
    declared_size: u64,
    body: &[u8],
    digest: &Digest,
) -> Result<()> {
    if !CONFIG_MEDIA_TYPES.contains(&media_type) {
        return Err(ImageError::Unsupported(format!(
            "config {digest} has media type {media_type:?}, which is not an image config (an OCI artifact is not a container image)"
        )));
    }
    check_size("config", declared_size, body, digest)
}

/// Media types of image layers crius unpacks: OCI's (plain, gzip, zstd, also
/// non-distributable) and Docker schema 2's.
const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// A layer descriptor must name a layer media type: anything else (a config, a manifest, an
/// artifact's blob, an encrypted layer) is not a filesystem changeset crius can unpack.
pub fn check_layer_media_type(media_type: &str, digest: &str) -> Result<()> {
    if LAYER_MEDIA_TYPES.contains(&media_type) {
        return Ok(());
    }
    let shown: String = media_type.chars().take(100).collect();
    let digest: String = digest.chars().take(100).collect();
    Err(ImageError::Unsupported(format!(
        "layer {digest} has media type {shown:?}, which is not an image layer"
    )))
}

/// A fetched document is exactly as large as the descriptor that named it said.
pub fn check_size(what: &str, declared: u64, body: &[u8], digest: &Digest) -> Result<()> {
    if body.len() as u64 != declared {
        return Err(ImageError::Verification {
            digest: digest.to_string(),
            message: format!(
                "the {what} is {} bytes, its descriptor says {declared} bytes",
                body.len()
            ),
        });
    }
    Ok(())
}

/// The parts of an image config the store keeps and checks.
pub struct ConfigSummary {
    pub diff_ids: Vec<Digest>,
    pub user: String,
}

pub fn parse_config(body: &[u8], digest: &Digest) -> Result<ConfigSummary> {
    let config: ImageConfiguration = serde_json::from_slice(body)
        .map_err(|e| ImageError::Registry(format!("image config {digest}: {e}")))?;
    // The only root filesystem kind there is; anything else is a config crius cannot apply.
    if config.rootfs().typ() != "layers" {
        let typ: String = config.rootfs().typ().chars().take(64).collect();
        return Err(ImageError::Verification {
            digest: digest.to_string(),
            message: format!("rootfs.type is {typ:?}, not \"layers\""),
        });
    }
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
        let (chosen, _) = select(&idx, ("linux", "amd64", None)).unwrap();
        assert!(chosen.hex().starts_with('b'));
        let (chosen, _) = select(&idx, ("linux", "arm64", Some("v8"))).unwrap();
        assert!(chosen.hex().starts_with('a'));
    }

    #[test]
    fn variant_must_match_when_both_name_one() {
        let idx = index(&[
            ("linux", "arm", Some("v6"), 'a'),
            ("linux", "arm", Some("v7"), 'b'),
        ]);
        let (chosen, _) = select(&idx, ("linux", "arm", Some("v7"))).unwrap();
        assert!(chosen.hex().starts_with('b'));
        assert!(select(&idx, ("linux", "amd64", None)).is_none());
        assert!(select(&idx, ("windows", "arm", Some("v7"))).is_none());
    }

    fn config_with_rootfs(typ: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": typ, "diff_ids": []},
        }))
        .unwrap()
    }

    #[test]
    fn a_config_whose_rootfs_is_not_layers_is_refused() {
        let d = Digest::of(b"x");
        assert!(parse_config(&config_with_rootfs("layers"), &d).is_ok());
        let err = parse_config(&config_with_rootfs("squashfs"), &d)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("rootfs.type is \"squashfs\""), "{err}");
    }

    #[test]
    fn config_descriptors_must_name_an_image_config_of_the_blobs_size() {
        let body = config_with_rootfs("layers");
        let d = Digest::of(&body);
        let oci = "application/vnd.oci.image.config.v1+json";
        let size = body.len() as u64;
        check_config_descriptor(oci, size, &body, &d).unwrap();
        check_config_descriptor(
            "application/vnd.docker.container.image.v1+json",
            size,
            &body,
            &d,
        )
        .unwrap();
        for lie in [size - 1, size + 1, 0] {
            let err = check_config_descriptor(oci, lie, &body, &d).err().unwrap();
            assert!(
                matches!(err, ImageError::Verification { .. }) && err.to_string().contains("bytes"),
                "{err}"
            );
        }
        let err =
            check_config_descriptor("application/vnd.cncf.helm.config.v1+json", size, &body, &d)
                .err()
                .unwrap();
        assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
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
