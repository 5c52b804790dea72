//! Test images, built here from Debian's static busybox and pushed with oci-client.
//!
//! | builder | what it is |
//! | --- | --- |
//! | [`single`] | one gzip layer: busybox + applet symlinks, `/etc/passwd` with `app` (uid 1000), `Cmd ["sh"]` |
//! | [`multi`] | three gzip layers; layer 2 deletes a file (`.wh.`) and makes a directory opaque |
//! | [`zstd`] | a zstd layer plus an uncompressed one |
//! | [`oci_index`] / [`docker_list`] | linux/amd64 + linux/arm64 under an OCI index / a Docker manifest list |
//! | [`big`] | ~200 MiB of incompressible data in 5 layers, cached on disk between test processes |
//!
//! `push_*` functions push those to a [`TestRegistry`] and return what the tests compare the
//! daemon's answers with ([`PushedImage`], [`PushedIndex`]); [`push_blob`] and
//! [`push_manifest_raw`] push arbitrary content for edge cases.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use oci_client::Reference;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::layer::{Compression, Layer, TarBuilder};
use crate::registry::TestRegistry;
use crate::util::{host_arch, sha256_digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The label every test image carries, naming the builder (`single`, `multi`, ...): the verbose
/// `ImageStatus` info must contain it, since it is part of the image config.
pub const KIND_LABEL: &str = "org.crius.e2e.image";

/// Files the merged root filesystem of [`multi`] must contain.
pub const MULTI_PRESENT: &[&str] = &[
    "/data/keep.txt",
    "/data/added.txt",
    "/opaque/new.txt",
    "/etc/multi-marker",
];
/// Files lower layers of [`multi`] put there and upper layers delete.
pub const MULTI_ABSENT: &[&str] = &[
    "/data/remove-me.txt",
    "/opaque/old.txt",
    "/opaque/sub/old2.txt",
];

/// Where busybox is read from (`CRIUS_E2E_BUSYBOX` overrides; Debian's busybox-static).
pub fn busybox_path() -> PathBuf {
    std::env::var_os("CRIUS_E2E_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"))
}

/// Manifest flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

/// The runtime part of an image config plus its platform.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    pub architecture: String,
    pub os: String,
    pub user: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
}

impl ConfigSpec {
    /// linux/<host arch>, `User: ""`, `PATH` set, `Cmd ["sh"]`, labelled `KIND_LABEL=kind`.
    pub fn new(kind: &str) -> ConfigSpec {
        ConfigSpec {
            architecture: host_arch().to_string(),
            os: "linux".to_string(),
            user: String::new(),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ],
            cmd: vec!["sh".to_string()],
            entrypoint: Vec::new(),
            working_dir: "/".to_string(),
            labels: BTreeMap::from([(KIND_LABEL.to_string(), kind.to_string())]),
        }
    }

    pub fn user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    pub fn architecture(mut self, arch: &str) -> Self {
        self.architecture = arch.to_string();
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The image config JSON for layers with these diff ids.
    pub fn to_json(&self, diff_ids: &[String]) -> Value {
        let mut config = json!({
            "User": self.user,
            "Env": self.env,
            "Cmd": self.cmd,
            "WorkingDir": self.working_dir,
            "Labels": self.labels,
        });
        if !self.entrypoint.is_empty() {
            config["Entrypoint"] = json!(self.entrypoint);
        }
        let history: Vec<Value> = diff_ids
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("crius-e2e layer {i}")}))
            .collect();
        json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": self.architecture,
            "os": self.os,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        })
    }
}

/// A blob with its media type and digest.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Bytes,
}

impl Blob {
    pub fn new(media_type: &str, data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        Blob {
            media_type: media_type.to_string(),
            digest: sha256_digest(&data),
            data,
        }
    }

    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "size": self.size(), "digest": self.digest})
    }
}

/// One platform's image, ready to push.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    pub format: Format,
    pub architecture: String,
    pub os: String,
    pub config: Blob,
    pub layers: Vec<(Layer, String)>,
    pub manifest: Blob,
}

impl ImageBuild {
    /// Assembles config and manifest for `layers` (in order, lowest first).
    pub fn new(format: Format, spec: &ConfigSpec, layers: Vec<Layer>) -> Result<ImageBuild> {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config_media_type = match format {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        };
        let config = Blob::new(
            config_media_type,
            serde_json::to_vec(&spec.to_json(&diff_ids))?,
        );
        let layers: Vec<(Layer, String)> = layers
            .into_iter()
            .map(|layer| {
                let media_type = match format {
                    Format::Oci => layer.compression.oci_media_type(),
                    Format::Docker => {
                        if !matches!(layer.compression, Compression::Gzip(_)) {
                            bail!("Docker schema2 manifests only carry gzip layers");
                        }
                        layer.compression.docker_media_type()
                    }
                };
                Ok((layer, media_type.to_string()))
            })
            .collect::<Result<_>>()?;
        let layer_descriptors: Vec<Value> = layers
            .iter()
            .map(|(layer, media_type)| json!({"mediaType": media_type, "size": layer.size(), "digest": layer.digest}))
            .collect();
        let manifest_media_type = match format {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_media_type,
            "config": config.descriptor(),
            "layers": layer_descriptors,
        });
        Ok(ImageBuild {
            format,
            architecture: spec.architecture.clone(),
            os: spec.os.clone(),
            config,
            layers,
            manifest: Blob::new(manifest_media_type, serde_json::to_vec(&manifest)?),
        })
    }

    /// Config plus compressed layers, in bytes.
    pub fn size(&self) -> u64 {
        self.config.size() + self.layers.iter().map(|(l, _)| l.size()).sum::<u64>()
    }
}

/// Several platforms' images under one OCI index or Docker manifest list.
#[derive(Debug, Clone)]
pub struct IndexBuild {
    pub images: Vec<ImageBuild>,
    pub index: Blob,
}

impl IndexBuild {
    pub fn new(format: Format, images: Vec<ImageBuild>) -> Result<IndexBuild> {
        let media_type = match format {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_LIST,
        };
        let manifests: Vec<Value> = images
            .iter()
            .map(|image| {
                let mut platform = json!({"architecture": image.architecture, "os": image.os});
                if image.architecture == "arm64" {
                    platform["variant"] = json!("v8");
                }
                let mut descriptor = image.manifest.descriptor();
                descriptor["platform"] = platform;
                descriptor
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
        Ok(IndexBuild {
            images,
            index: Blob::new(media_type, serde_json::to_vec(&index)?),
        })
    }
}

/// What a test compares the daemon's view of a pushed image with.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// `127.0.0.1:<port>/<repo>` (no tag or digest).
    pub name: String,
    pub tag: String,
    /// `name:tag`
    pub reference: String,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// The image id: `sha256:` of the config blob.
    pub config_digest: String,
    /// Compressed layer digests, lowest first.
    pub layer_digests: Vec<String>,
    /// Uncompressed layer digests, lowest first.
    pub diff_ids: Vec<String>,
    /// Config plus compressed layers, in bytes.
    pub size: u64,
    pub architecture: String,
}

impl PushedImage {
    /// The image id crius should report (`sha256:<config digest>`).
    pub fn id(&self) -> &str {
        &self.config_digest
    }

    /// `name@<manifest digest>`: pullable reference, and the expected `repo_digests` entry.
    pub fn by_digest(&self) -> String {
        format!("{}@{}", self.name, self.manifest_digest)
    }
}

/// A pushed OCI index or Docker manifest list.
#[derive(Debug, Clone)]
pub struct PushedIndex {
    pub name: String,
    pub tag: String,
    pub reference: String,
    pub index_digest: String,
    pub media_type: String,
    /// One per platform, each named `name` and tagged `tag` (though only the index has the tag).
    pub instances: Vec<PushedImage>,
}

impl PushedIndex {
    /// The instance a daemon on this machine must choose.
    pub fn for_host(&self) -> &PushedImage {
        self.for_arch(host_arch())
            .unwrap_or_else(|| panic!("index {} has no {} instance", self.reference, host_arch()))
    }

    pub fn for_arch(&self, arch: &str) -> Option<&PushedImage> {
        self.instances.iter().find(|i| i.architecture == arch)
    }

    /// `name@<index digest>`.
    pub fn by_digest(&self) -> String {
        format!("{}@{}", self.name, self.index_digest)
    }
}

// ---------------------------------------------------------------------------------------------
// Layer contents

/// The busybox root filesystem: directories, `/bin/busybox`, one symlink per applet, and
/// `/etc/passwd` + `/etc/group` with `root` (0) and `app` (1000).
pub fn add_busybox_root(tar: &mut TarBuilder) -> Result<()> {
    static BUSYBOX: OnceLock<(Vec<u8>, Vec<String>)> = OnceLock::new();
    let (binary, applets) = match BUSYBOX.get() {
        Some(v) => v,
        None => {
            let path = busybox_path();
            let binary = std::fs::read(&path).with_context(|| {
                format!(
                    "reading {} (install busybox-static: hack/install-deps.sh)",
                    path.display()
                )
            })?;
            let list = std::process::Command::new(&path)
                .arg("--list")
                .output()
                .with_context(|| format!("running {} --list", path.display()))?;
            let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
                .lines()
                .map(str::trim)
                .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
                .map(str::to_string)
                .collect();
            applets.sort();
            applets.dedup();
            BUSYBOX.get_or_init(|| (binary, applets))
        }
    };
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("var", 0o755),
    ] {
        tar.dir(dir, mode)?;
    }
    tar.dir_owned("home/app", 0o755, 1000, 1000)?;
    tar.file("bin/busybox", 0o755, binary)?;
    for applet in applets {
        tar.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    tar.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    tar.file(
        "etc/group",
        0o644,
        b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
    )?;
    Ok(())
}

/// The busybox root filesystem as one tar.
pub fn busybox_tar() -> Result<Vec<u8>> {
    let mut tar = TarBuilder::new();
    add_busybox_root(&mut tar)?;
    tar.finish()
}

/// The busybox root as one gzip layer, built once per process.
pub fn busybox_layer() -> Result<Layer> {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    if let Some(layer) = LAYER.get() {
        return Ok(layer.clone());
    }
    let layer = Layer::from_tar(&busybox_tar()?, Compression::Gzip(6))?;
    Ok(LAYER.get_or_init(|| layer).clone())
}

/// A layer holding one small file `path` with `contents` (parent directories included).
pub fn marker_layer(path: &str, contents: &[u8], compression: Compression) -> Result<Layer> {
    let mut tar = TarBuilder::new();
    let mut parent = String::new();
    if let Some((dirs, _)) = path.trim_start_matches('/').rsplit_once('/') {
        for part in dirs.split('/') {
            parent = if parent.is_empty() {
                part.to_string()
            } else {
                format!("{parent}/{part}")
            };
            tar.dir(&parent, 0o755)?;
        }
    }
    tar.file(path.trim_start_matches('/'), 0o644, contents)?;
    Layer::from_tar(&tar.finish()?, compression)
}

// ---------------------------------------------------------------------------------------------
// The test images

/// One gzip layer with busybox; `spec` decides the config (user, labels, ...).
pub fn single_with(spec: &ConfigSpec) -> Result<ImageBuild> {
    ImageBuild::new(Format::Oci, spec, vec![busybox_layer()?])
}

/// [`single_with`] the default config (`User: ""`, `Cmd ["sh"]`).
pub fn single() -> Result<ImageBuild> {
    single_with(&ConfigSpec::new("single"))
}

/// Three gzip layers exercising whiteouts: see [`MULTI_PRESENT`] and [`MULTI_ABSENT`].
pub fn multi() -> Result<ImageBuild> {
    let mut lower = TarBuilder::new();
    add_busybox_root(&mut lower)?;
    lower
        .dir("data", 0o755)?
        .file("data/keep.txt", 0o644, b"kept\n")?
        .file("data/remove-me.txt", 0o644, b"deleted by layer 2\n")?
        .dir("opaque", 0o755)?
        .file("opaque/old.txt", 0o644, b"hidden by layer 2\n")?
        .dir("opaque/sub", 0o755)?
        .file("opaque/sub/old2.txt", 0o644, b"hidden by layer 2\n")?;
    let mut middle = TarBuilder::new();
    middle
        .dir("data", 0o755)?
        .whiteout("data/remove-me.txt")?
        .dir("opaque", 0o755)?
        .opaque("opaque")?
        .file("opaque/new.txt", 0o644, b"from layer 2\n")?;
    let mut upper = TarBuilder::new();
    upper
        .dir("data", 0o755)?
        .file("data/added.txt", 0o644, b"from layer 3\n")?
        .dir("etc", 0o755)?
        .file("etc/multi-marker", 0o644, b"multi\n")?;
    let layers = vec![
        Layer::from_tar(&lower.finish()?, Compression::Gzip(6))?,
        Layer::from_tar(&middle.finish()?, Compression::Gzip(6))?,
        Layer::from_tar(&upper.finish()?, Compression::Gzip(6))?,
    ];
    ImageBuild::new(Format::Oci, &ConfigSpec::new("multi"), layers)
}

/// A zstd-compressed busybox layer plus an uncompressed layer with `/etc/zstd-marker`.
pub fn zstd() -> Result<ImageBuild> {
    let layers = vec![
        Layer::from_tar(&busybox_tar()?, Compression::Zstd(3))?,
        marker_layer("/etc/zstd-marker", b"zstd\n", Compression::None)?,
    ];
    ImageBuild::new(Format::Oci, &ConfigSpec::new("zstd"), layers)
}

fn arch_image(format: Format, kind: &str, arch: &str) -> Result<ImageBuild> {
    let layers = vec![
        busybox_layer()?,
        marker_layer(
            "/etc/arch",
            format!("{arch}\n").as_bytes(),
            Compression::Gzip(6),
        )?,
    ];
    let spec = ConfigSpec::new(kind)
        .architecture(arch)
        .label("org.crius.e2e.arch", arch);
    ImageBuild::new(format, &spec, layers)
}

/// An OCI image index with linux/amd64 and linux/arm64 (each: busybox + `/etc/arch`).
pub fn oci_index() -> Result<IndexBuild> {
    let images = vec![
        arch_image(Format::Oci, "oci-index", "amd64")?,
        arch_image(Format::Oci, "oci-index", "arm64")?,
    ];
    IndexBuild::new(Format::Oci, images)
}

/// The Docker manifest list (schema2) counterpart of [`oci_index`].
pub fn docker_list() -> Result<IndexBuild> {
    let images = vec![
        arch_image(Format::Docker, "docker-list", "amd64")?,
        arch_image(Format::Docker, "docker-list", "arm64")?,
    ];
    IndexBuild::new(Format::Docker, images)
}

/// Layers of [`big`].
pub const BIG_LAYERS: usize = 5;
/// Bytes of random data in each layer of [`big`].
pub const BIG_LAYER_BYTES: usize = 40 << 20;
const BIG_CACHE_KEY: &str = "big-v1";

/// Where [`big`] keeps its layers between test processes (`CRIUS_E2E_CACHE` overrides).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CRIUS_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("crius-e2e-cache"))
}

/// ~200 MiB in [`BIG_LAYERS`] layers of seeded random bytes (gzip with stored blocks, so the
/// blobs do not shrink and building stays fast). Built once per machine into [`cache_dir`]
/// (under a file lock, so parallel test processes build it once) and once per process into
/// memory. Blocking: call it from `spawn_blocking` in async code (as [`push_big`] does).
pub fn big() -> Result<Arc<ImageBuild>> {
    static BIG: Mutex<Option<Arc<ImageBuild>>> = Mutex::new(None);
    let mut slot = BIG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(image) = slot.as_ref() {
        return Ok(image.clone());
    }
    let layers = big_layers_cached(&cache_dir())?;
    let image = Arc::new(ImageBuild::new(
        Format::Oci,
        &ConfigSpec::new("big"),
        layers,
    )?);
    *slot = Some(image.clone());
    Ok(image)
}

fn big_layers_cached(cache: &Path) -> Result<Vec<Layer>> {
    use nix::fcntl::{Flock, FlockArg};

    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let lock_path = cache.join(format!("{BIG_CACHE_KEY}.lock"));
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("locking {}: {errno}", lock_path.display()))?;

    let dir = cache.join(BIG_CACHE_KEY);
    let index_path = dir.join("layers.json");
    if let Ok(index) = std::fs::read(&index_path)
        && let Ok(layers) = load_big_layers(&dir, &index)
    {
        return Ok(layers);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut index = Vec::new();
    let mut layers = Vec::new();
    for i in 0..BIG_LAYERS {
        let mut data = vec![0u8; BIG_LAYER_BYTES];
        fill_random(&mut data, 0x6372_6975_7300 + i as u64);
        let mut tar = TarBuilder::new();
        tar.dir("big", 0o755)?
            .file(&format!("big/layer-{i}.bin"), 0o644, &data)?;
        drop(data);
        let layer = Layer::from_tar(&tar.finish()?, Compression::Gzip(0))?;
        let file = dir.join(format!("layer-{i}.tar.gz"));
        std::fs::File::create(&file)
            .and_then(|mut f| f.write_all(&layer.blob))
            .with_context(|| format!("writing {}", file.display()))?;
        index.push(json!({"digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size()}));
        layers.push(layer);
    }
    std::fs::write(&index_path, serde_json::to_vec(&index)?)?;
    Ok(layers)
}

fn load_big_layers(dir: &Path, index: &[u8]) -> Result<Vec<Layer>> {
    let entries: Vec<Value> = serde_json::from_slice(index)?;
    if entries.len() != BIG_LAYERS {
        bail!("stale big-image cache");
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let blob = std::fs::read(dir.join(format!("layer-{i}.tar.gz")))?;
            let size = entry["size"].as_u64().context("size")?;
            if blob.len() as u64 != size {
                bail!(
                    "stale big-image cache: layer {i} has {} bytes, expected {size}",
                    blob.len()
                );
            }
            Ok(Layer {
                blob: Bytes::from(blob),
                digest: entry["digest"].as_str().context("digest")?.to_string(),
                diff_id: entry["diff_id"].as_str().context("diff_id")?.to_string(),
                compression: Compression::Gzip(0),
            })
        })
        .collect()
}

/// Deterministic, incompressible bytes (splitmix64), fast even in debug builds.
pub fn fill_random(buf: &mut [u8], seed: u64) {
    let mut state = seed;
    for chunk in buf.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

// ---------------------------------------------------------------------------------------------
// Pushing

fn reference(registry: &TestRegistry, repo: &str, tag_or_digest: &str) -> Reference {
    if tag_or_digest.contains(':') {
        Reference::with_digest(registry.host(), repo.to_string(), tag_or_digest.to_string())
    } else {
        Reference::with_tag(registry.host(), repo.to_string(), tag_or_digest.to_string())
    }
}

async fn client_for(registry: &TestRegistry) -> Result<oci_client::Client> {
    let client = registry.oci_client()?;
    client
        .store_auth_if_needed(&registry.host(), &registry.registry_auth())
        .await;
    Ok(client)
}

async fn push_blob_with(
    client: &oci_client::Client,
    registry: &TestRegistry,
    repo: &str,
    blob: &Bytes,
    digest: &str,
) -> Result<()> {
    let reference = reference(registry, repo, "latest");
    if client
        .blob_exists(&reference, digest)
        .await
        .unwrap_or(false)
    {
        return Ok(());
    }
    client
        .push_blob(&reference, blob.clone(), digest)
        .await
        .with_context(|| format!("pushing blob {digest} to {}/{repo}", registry.host()))?;
    Ok(())
}

/// Pushes one blob to `repo`; returns its digest.
pub async fn push_blob(
    registry: &TestRegistry,
    repo: &str,
    data: impl Into<Bytes>,
) -> Result<String> {
    let data = data.into();
    let digest = sha256_digest(&data);
    let client = client_for(registry).await?;
    push_blob_with(&client, registry, repo, &data, &digest).await?;
    Ok(digest)
}

/// Pushes manifest bytes as-is under `tag_or_digest` with `media_type`; returns the body's digest.
/// The registry still validates it (referenced blobs and manifests must exist).
pub async fn push_manifest_raw(
    registry: &TestRegistry,
    repo: &str,
    tag_or_digest: &str,
    media_type: &str,
    body: impl Into<Bytes>,
) -> Result<String> {
    let client = client_for(registry).await?;
    push_manifest_with(
        &client,
        registry,
        repo,
        tag_or_digest,
        media_type,
        body.into(),
    )
    .await
}

async fn push_manifest_with(
    client: &oci_client::Client,
    registry: &TestRegistry,
    repo: &str,
    tag_or_digest: &str,
    media_type: &str,
    body: Bytes,
) -> Result<String> {
    let digest = sha256_digest(&body);
    client
        .push_manifest_raw(
            &reference(registry, repo, tag_or_digest),
            body,
            HeaderValue::from_str(media_type)?,
        )
        .await
        .with_context(|| {
            format!(
                "pushing manifest to {}/{repo}:{tag_or_digest}",
                registry.host()
            )
        })?;
    Ok(digest)
}

async fn push_image_blobs(
    client: &oci_client::Client,
    registry: &TestRegistry,
    repo: &str,
    image: &ImageBuild,
) -> Result<()> {
    for (layer, _) in &image.layers {
        push_blob_with(client, registry, repo, &layer.blob, &layer.digest).await?;
    }
    push_blob_with(
        client,
        registry,
        repo,
        &image.config.data,
        &image.config.digest,
    )
    .await
}

fn pushed_image(registry: &TestRegistry, repo: &str, tag: &str, image: &ImageBuild) -> PushedImage {
    let name = format!("{}/{repo}", registry.host());
    PushedImage {
        reference: format!("{name}:{tag}"),
        name,
        tag: tag.to_string(),
        manifest_digest: image.manifest.digest.clone(),
        manifest_media_type: image.manifest.media_type.clone(),
        config_digest: image.config.digest.clone(),
        layer_digests: image.layers.iter().map(|(l, _)| l.digest.clone()).collect(),
        diff_ids: image
            .layers
            .iter()
            .map(|(l, _)| l.diff_id.clone())
            .collect(),
        size: image.size(),
        architecture: image.architecture.clone(),
    }
}

/// Pushes `image` as `<registry>/<repo>:<tag>`.
pub async fn push_image(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
    image: &ImageBuild,
) -> Result<PushedImage> {
    let client = client_for(registry).await?;
    push_image_blobs(&client, registry, repo, image).await?;
    let media_type = image.manifest.media_type.clone();
    push_manifest_with(
        &client,
        registry,
        repo,
        tag,
        &media_type,
        image.manifest.data.clone(),
    )
    .await?;
    Ok(pushed_image(registry, repo, tag, image))
}

/// Pushes every platform's image by digest, then the index as `<registry>/<repo>:<tag>`.
pub async fn push_index(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
    index: &IndexBuild,
) -> Result<PushedIndex> {
    let client = client_for(registry).await?;
    let mut instances = Vec::new();
    for image in &index.images {
        push_image_blobs(&client, registry, repo, image).await?;
        let media_type = image.manifest.media_type.clone();
        push_manifest_with(
            &client,
            registry,
            repo,
            &image.manifest.digest,
            &media_type,
            image.manifest.data.clone(),
        )
        .await?;
        instances.push(pushed_image(registry, repo, tag, image));
    }
    let media_type = index.index.media_type.clone();
    push_manifest_with(
        &client,
        registry,
        repo,
        tag,
        &media_type,
        index.index.data.clone(),
    )
    .await?;
    let name = format!("{}/{repo}", registry.host());
    Ok(PushedIndex {
        reference: format!("{name}:{tag}"),
        name,
        tag: tag.to_string(),
        index_digest: index.index.digest.clone(),
        media_type,
        instances,
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("image builder panicked")?
}

/// Builds and pushes [`single`].
pub async fn push_single(registry: &TestRegistry, repo: &str, tag: &str) -> Result<PushedImage> {
    push_image(registry, repo, tag, &blocking(single).await?).await
}

/// Builds and pushes [`single_with`] `spec`.
pub async fn push_single_with(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
    spec: ConfigSpec,
) -> Result<PushedImage> {
    push_image(
        registry,
        repo,
        tag,
        &blocking(move || single_with(&spec)).await?,
    )
    .await
}

/// Builds and pushes [`multi`].
pub async fn push_multi(registry: &TestRegistry, repo: &str, tag: &str) -> Result<PushedImage> {
    push_image(registry, repo, tag, &blocking(multi).await?).await
}

/// Builds and pushes [`zstd`].
pub async fn push_zstd(registry: &TestRegistry, repo: &str, tag: &str) -> Result<PushedImage> {
    push_image(registry, repo, tag, &blocking(zstd).await?).await
}

/// Builds and pushes [`oci_index`].
pub async fn push_oci_index(registry: &TestRegistry, repo: &str, tag: &str) -> Result<PushedIndex> {
    push_index(registry, repo, tag, &blocking(oci_index).await?).await
}

/// Builds and pushes [`docker_list`].
pub async fn push_docker_list(
    registry: &TestRegistry,
    repo: &str,
    tag: &str,
) -> Result<PushedIndex> {
    push_index(registry, repo, tag, &blocking(docker_list).await?).await
}

/// Builds (or loads from the cache) and pushes [`big`].
pub async fn push_big(registry: &TestRegistry, repo: &str, tag: &str) -> Result<PushedImage> {
    let image = blocking(big).await?;
    push_image(registry, repo, tag, &image).await
}
