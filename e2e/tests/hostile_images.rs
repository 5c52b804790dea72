//! The hostile-registry suite: crafted images pushed to the loopback registry (and served
//! through the fault proxy where a blob must change in transit), then pulled by the real daemon.
//! Every case is either refused with the documented gRPC code and leaves nothing in the store
//! (no new blob, layer, index entry or work file), or accepted and harmless: nothing outside
//! the layer directories changes — a canary directory on the host keeps its one file, content
//! and xattrs — and, where the image's content matters, a container from it checks from inside
//! that the layers mean what overlayfs makes of them. The daemon, registry and pod are shared;
//! each case starts from and returns to the same store.

use std::path::Path;
use std::time::Duration;

use crius_e2e::images::{self, ConfigSpec, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use crius_e2e::layer::{Compression, Layer, TarBuilder};
use crius_e2e::pods::{PodEnv, pod_config, shell_container};
use crius_e2e::proxy::{BlobFault, Proxy};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::sha256_digest;
use serde_json::{Value, json};
use tonic::Code;

/// A fixed host path, so the hostile layers can name it.
const CANARY_DIR: &str = "/tmp/crius-e2e-hostile-canary";
const CANARY: &[u8] = b"host canary\n";
const REPO: &str = "e2e/hostile";

/// What a case expects of the pull.
enum Expect {
    /// Refused with this code and a message containing this text.
    Refused(Code, &'static str),
    /// Accepted, and harmless to the host.
    Harmless,
    /// Accepted, and a container from it runs this script to exit 0.
    Runs(&'static str),
}

/// Which blob the proxy corrupts in transit.
#[derive(Clone, Copy)]
enum Corrupt {
    TopLayer,
    Config,
}

/// One crafted image: busybox at the bottom, then `layers`.
#[derive(Default)]
struct Image {
    layers: Vec<HostileLayer>,
    edit_config: Option<fn(&mut Value)>,
    edit_manifest: Option<fn(&mut Value)>,
    /// Wrap the manifest in an OCI index whose JSON this edits.
    edit_index: Option<fn(&mut Value)>,
    corrupt: Option<Corrupt>,
}

struct HostileLayer {
    tar: Vec<u8>,
    /// The blob as pushed, when it is not the gzip of `tar`.
    blob: Option<Vec<u8>>,
    media_type: &'static str,
}

fn layer(build: impl FnOnce(&mut TarBuilder) -> anyhow::Result<()>) -> HostileLayer {
    let mut tar = TarBuilder::new();
    build(&mut tar).expect("build hostile layer");
    HostileLayer {
        tar: tar.finish().expect("finish tar"),
        blob: None,
        media_type: Compression::Gzip(6).oci_media_type(),
    }
}

fn image(layers: Vec<HostileLayer>) -> Image {
    Image {
        layers,
        ..Image::default()
    }
}

fn one(build: impl FnOnce(&mut TarBuilder) -> anyhow::Result<()>) -> Image {
    image(vec![layer(build)])
}

fn canary_path(rel: &str) -> String {
    format!("{CANARY_DIR}/{rel}")
}

/// `../` enough times to climb from any layer directory to `/`.
const CLIMB: &str = "../../../../../../../../../../";

/// Where a case's image comes from.
enum Source {
    /// Pushed to the loopback registry.
    Pushed(Image),
    /// Served by the [`Liar`] under this tag, or by the honest manifest's digest (`None`).
    Liar(Option<&'static str>),
}

struct Case {
    name: &'static str,
    source: Source,
    expect: Expect,
}

fn case(name: &'static str, image: Image, expect: Expect) -> Case {
    Case {
        name,
        source: Source::Pushed(image),
        expect,
    }
}

fn liar_case(name: &'static str, tag: Option<&'static str>, expect: Expect) -> Case {
    Case {
        name,
        source: Source::Liar(tag),
        expect,
    }
}

fn refused(code: Code, says: &'static str) -> Expect {
    Expect::Refused(code, says)
}

#[path = "hostile_images/cases.rs"]
mod cases;
use cases::cases;

/// What the daemon's store holds: blob and layer names, image count, work files.
#[derive(Debug, PartialEq, Eq)]
struct StoreState {
    blobs: Vec<String>,
    layers: Vec<String>,
    images: Vec<String>,
    tmp: Vec<String>,
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn store_state(env: &PodEnv) -> StoreState {
    let root = env.crius.root().join("images");
    let mut images: Vec<String> = env
        .crius
        .images()
        .await
        .expect("image client")
        .list(None)
        .await
        .expect("ListImages")
        .into_iter()
        .map(|i| i.id)
        .collect();
    images.sort();
    StoreState {
        blobs: listing(&root.join("blobs/sha256")),
        layers: listing(&root.join("layers")),
        images,
        tmp: listing(&root.join("tmp")),
    }
}

/// The store once a pull's work files are gone (removal after a failure runs on its own).
async fn settled_store_state(env: &PodEnv) -> StoreState {
    let mut state = store_state(env).await;
    for _ in 0..50 {
        if state.tmp.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = store_state(env).await;
    }
    state
}

fn plant_canary() {
    let _ = std::fs::remove_dir_all(CANARY_DIR);
    std::fs::create_dir_all(CANARY_DIR).expect("canary dir");
    std::fs::write(canary_path("canary"), CANARY).expect("canary");
}

fn assert_canary_untouched(case: &str) {
    assert_eq!(
        listing(Path::new(CANARY_DIR)),
        ["canary"],
        "{case}: canary dir changed"
    );
    let meta = std::fs::symlink_metadata(canary_path("canary")).expect("stat canary");
    assert!(meta.file_type().is_file(), "{case}: canary replaced");
    assert_eq!(
        std::fs::read(canary_path("canary")).expect("read canary"),
        CANARY,
        "{case}"
    );
    for dir in [CANARY_DIR.to_string(), canary_path("canary")] {
        let xattrs = std::process::Command::new("getfattr")
            .args(["-m", "-", "-d", &dir])
            .output();
        if let Ok(out) = xattrs {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                !text.contains("overlay"),
                "{case}: {dir} got xattrs: {text}"
            );
        }
    }
}

/// A registry that lies where the distribution registry would not let a push lie: it serves
/// fixed responses, per method and path, from memory (plain HTTP, one request at a time per
/// connection). Anything else is a 404.
struct Liar {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

type Routes = std::collections::HashMap<String, (String, Vec<(String, String)>, Vec<u8>)>;

impl Liar {
    async fn start(routes: Routes) -> Liar {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let routes = std::sync::Arc::new(routes);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::serve(stream, routes.clone()));
            }
        });
        Liar { addr, task }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    async fn serve(mut stream: tokio::net::TcpStream, routes: std::sync::Arc<Routes>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut pending = Vec::new();
        // A client trying TLS first (the daemon does, for an insecure registry) is told no at
        // once: a TLS record starts with 0x16, an HTTP request with a method name.
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await.map_or(true, |n| n == 0) || first[0] == 0x16 {
            return;
        }
        loop {
            let head_end = loop {
                if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                let mut buf = [0u8; 4096];
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
                if pending.len() > 64 * 1024 {
                    return;
                }
            };
            let head: Vec<u8> = pending.drain(..head_end).collect();
            let head = String::from_utf8_lossy(&head);
            let mut words = head.split_whitespace();
            let (Some(method), Some(target)) = (words.next(), words.next()) else {
                return;
            };
            let path = target.split('?').next().unwrap_or(target);
            let (status, headers, body) = match routes.get(path) {
                Some((content_type, extra, body)) => {
                    let mut headers = vec![("Content-Type".to_string(), content_type.clone())];
                    headers.extend(extra.iter().cloned());
                    ("200 OK", headers, body.clone())
                }
                None => (
                    "404 Not Found",
                    vec![("Content-Type".to_string(), "application/json".to_string())],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                        .to_vec(),
                ),
            };
            let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str("\r\n");
            let mut bytes = response.into_bytes();
            if method != "HEAD" {
                bytes.extend_from_slice(&body);
            }
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The liar's image: busybox and a marker layer, with a config, a manifest as `edit` leaves
/// it, served under `liar:honest`, `liar:<tag>` and by its digest.
fn liar_routes() -> (Routes, String) {
    let base = images::busybox_layer().expect("busybox layer");
    let marker = Layer::from_tar(
        &{
            let mut t = TarBuilder::new();
            t.file("liar-marker", 0o644, b"x").expect("entry");
            t.finish().expect("tar")
        },
        Compression::Gzip(6),
    )
    .expect("layer");
    let config = serde_json::to_vec(
        &ConfigSpec::new("liar").to_json(&[base.diff_id.clone(), marker.diff_id.clone()]),
    )
    .expect("config");
    let config_digest = sha256_digest(&config);
    let layers: Vec<Value> = [&base, &marker]
        .iter()
        .map(|l| json!({"mediaType": l.compression.oci_media_type(), "size": l.size(), "digest": l.digest}))
        .collect();
    let manifest = |media_type: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": config_digest},
            "layers": layers,
        }))
        .expect("manifest")
    };
    let honest = manifest(OCI_MANIFEST);
    let honest_digest = sha256_digest(&honest);
    let says_index = manifest(OCI_INDEX);
    let other = manifest("application/vnd.docker.distribution.manifest.v2+json");
    let mut routes = Routes::new();
    let blob = |body: Vec<u8>| ("application/octet-stream".to_string(), Vec::new(), body);
    let repo = format!("/v2/{LIAR_REPO}");
    routes.insert(
        "/v2/".into(),
        ("application/json".into(), Vec::new(), b"{}".to_vec()),
    );
    routes.insert(
        format!("{repo}/blobs/{}", base.digest),
        blob(base.blob.to_vec()),
    );
    routes.insert(
        format!("{repo}/blobs/{}", marker.digest),
        blob(marker.blob.to_vec()),
    );
    routes.insert(
        format!("{repo}/blobs/{config_digest}"),
        blob(config.clone()),
    );
    let served = |body: &Vec<u8>, media_type: &str, digest: &str| {
        (
            media_type.to_string(),
            vec![("Docker-Content-Digest".to_string(), digest.to_string())],
            body.clone(),
        )
    };
    routes.insert(
        format!("{repo}/manifests/honest"),
        served(&honest, OCI_MANIFEST, &honest_digest),
    );
    // A manifest that says it is an index, served as one.
    routes.insert(
        format!("{repo}/manifests/says-index"),
        served(&says_index, OCI_INDEX, &sha256_digest(&says_index)),
    );
    // A tag whose digest header names another manifest than the body.
    routes.insert(
        format!("{repo}/manifests/wrong-header"),
        served(&honest, OCI_MANIFEST, &sha256_digest(&other)),
    );
    // Asked by the honest manifest's digest, it serves another one.
    routes.insert(
        format!("{repo}/manifests/{honest_digest}"),
        (OCI_MANIFEST.to_string(), Vec::new(), other.clone()),
    );
    (routes, honest_digest)
}

const LIAR_REPO: &str = "e2e/liar";

/// Pushes `image` under `tag`; returns the reference to pull (through the proxy when a blob
/// is to be corrupted in transit).
async fn push(registry: &TestRegistry, proxy: &Proxy, tag: &str, image: Image) -> String {
    let base = images::busybox_layer().expect("busybox layer");
    let mut pushed: Vec<(Vec<u8>, &'static str, String)> = vec![(
        base.blob.to_vec(),
        base.compression.oci_media_type(),
        base.diff_id,
    )];
    for l in image.layers {
        let blob = match l.blob {
            Some(blob) => blob,
            None => Layer::from_tar(&l.tar, Compression::Gzip(6))
                .expect("compress")
                .blob
                .to_vec(),
        };
        pushed.push((blob, l.media_type, sha256_digest(&l.tar)));
    }
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (blob, media_type, diff_id) in &pushed {
        let size = blob.len();
        let digest = images::push_blob(registry, REPO, blob.clone())
            .await
            .expect("push layer");
        descriptors.push(json!({"mediaType": media_type, "size": size, "digest": digest}));
        diff_ids.push(diff_id.clone());
    }
    let mut config = ConfigSpec::new("hostile").to_json(&diff_ids);
    if let Some(edit) = image.edit_config {
        edit(&mut config);
    }
    let config = serde_json::to_vec(&config).expect("config json");
    let config_size = config.len();
    let config_digest = images::push_blob(registry, REPO, config)
        .await
        .expect("push config");
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config_size, "digest": config_digest},
        "layers": descriptors,
    });
    if let Some(edit) = image.edit_manifest {
        edit(&mut manifest);
    }
    // The registry files a manifest by the media type it is pushed with.
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or(OCI_MANIFEST)
        .to_string();
    let body = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_size = body.len();
    let manifest_digest = if image.edit_index.is_some() {
        sha256_digest(&body)
    } else {
        String::new()
    };
    let manifest_tag = if image.edit_index.is_some() {
        manifest_digest.as_str()
    } else {
        tag
    };
    images::push_manifest_raw(registry, REPO, manifest_tag, &media_type, body)
        .await
        .expect("push manifest");
    if let Some(edit) = image.edit_index {
        let mut index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "size": manifest_size,
                "digest": manifest_digest,
                "platform": {"architecture": crius_e2e::util::host_arch(), "os": "linux"},
            }],
        });
        edit(&mut index);
        let body = serde_json::to_vec(&index).expect("index json");
        images::push_manifest_raw(registry, REPO, tag, OCI_INDEX, body)
            .await
            .expect("push index");
    }
    match image.corrupt {
        None => format!("{}/{REPO}:{tag}", registry.host()),
        Some(which) => {
            let digest = match which {
                Corrupt::Config => config_digest,
                Corrupt::TopLayer => {
                    let top = &pushed.last().expect("a layer").0;
                    sha256_digest(top)
                }
            };
            proxy.set_fault_for(&[digest], BlobFault::Corrupt);
            format!("{}/{REPO}:{tag}", proxy.host())
        }
    }
}

#[tokio::test]
async fn hostile_images_are_refused_or_harmless_and_refusals_leave_nothing() {
    plant_canary();
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let proxy = Proxy::for_registry(&registry).unwrap();
    let (routes, liar_digest) = liar_routes();
    let liar = Liar::start(routes).await;
    let (registry_host, proxy_host, liar_host) = (registry.host(), proxy.host(), liar.host());
    let mut env = PodEnv::start_with(|b| {
        b.insecure(&registry_host)
            .insecure(&proxy_host)
            .insecure(&liar_host)
    })
    .await
    .unwrap();
    let pid = env.crius.pid();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("hostile", &env.log_dir("hostile"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let mut client = env.crius.images().await.unwrap();
    let baseline = settled_store_state(&env).await;

    let all = cases();
    assert!(all.len() >= 40, "{} cases", all.len());
    let (mut refused_count, mut accepted_count) = (0, 0);
    let started = std::time::Instant::now();
    for (
        i,
        Case {
            name,
            source,
            expect,
        },
    ) in all.into_iter().enumerate()
    {
        let tag = format!("case-{i}");
        let case_started = std::time::Instant::now();
        let reference = match source {
            Source::Pushed(image) => push(&registry, &proxy, &tag, image).await,
            Source::Liar(Some(tag)) => format!("{liar_host}/{LIAR_REPO}:{tag}"),
            Source::Liar(None) => format!("{liar_host}/{LIAR_REPO}@{liar_digest}"),
        };
        let pulled = client.pull(&reference).await;
        proxy.clear();
        match (expect, pulled) {
            (Expect::Refused(code, says), Err(status)) => {
                refused_count += 1;
                assert_eq!(status.code(), code, "{name}: {status:?}");
                assert!(
                    status.message().contains(says),
                    "{name}: wanted {says:?} in {status:?}"
                );
                assert!(
                    !status.message().contains("bytes in all"),
                    "{name}: the message was cut: {status:?}"
                );
                assert!(
                    status.message().len() <= 1024,
                    "{name}: {} bytes",
                    status.message().len()
                );
                assert_eq!(
                    settled_store_state(&env).await,
                    baseline,
                    "{name}: the refusal left something"
                );
            }
            (Expect::Refused(..), Ok(id)) => panic!("{name}: accepted as {id}"),
            (_, Err(status)) => panic!("{name}: refused: {status:?}"),
            (expect, Ok(_)) => {
                accepted_count += 1;
                if let Expect::Runs(script) = expect {
                    let config = shell_container(&format!("c{i}"), &reference, script);
                    let id = flow
                        .create_and_start(&pod_id, &config, &pod)
                        .await
                        .unwrap_or_else(|e| panic!("{name}: container: {e:?}"));
                    let status = flow
                        .wait_container_exited(&id, Duration::from_secs(60))
                        .await
                        .unwrap();
                    let log =
                        std::fs::read_to_string(env.log_dir("hostile").join(format!("c{i}.log")))
                            .unwrap_or_default();
                    assert_eq!(status.exit_code, 0, "{name}: `{script}` failed: {log}");
                    flow.remove_container(&id).await.unwrap();
                }
                client.remove(&reference).await.unwrap();
                assert_eq!(
                    settled_store_state(&env).await,
                    baseline,
                    "{name}: removal left something"
                );
            }
        }
        assert_canary_untouched(name);
        assert!(env.crius.is_running(), "{name}: the daemon died");
        eprintln!("hostile case {i} ({name}): {:?}", case_started.elapsed());
    }
    eprintln!(
        "hostile images: {refused_count} refused, {accepted_count} accepted, in {:?}",
        started.elapsed()
    );
    assert_eq!(env.crius.pid(), pid, "the daemon restarted");
    flow.remove_pod(&pod_id).await.unwrap();
    let _ = std::fs::remove_dir_all(CANARY_DIR);
}

/// The same layer, with a hard link into the layer below, over two different bases: each image
/// gets its own copy of its own base's file, because the copied-up layer is stored under its
/// chain id, not its diff id. Removing one image leaves the other's copy.
#[tokio::test]
async fn a_layer_linking_into_lower_layers_is_stored_per_base() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let crius = crius_e2e::Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut client = crius.images().await.unwrap();
    let linking = || layer(|t| t.hardlink("copy", "base-file").map(drop));
    let mut keys = Vec::new();
    for (tag, content) in [("base-a", b"from base a\n"), ("base-b", b"from base b\n")] {
        let base = layer(|t| t.file("base-file", 0o644, content).map(drop));
        let reference = push(
            &registry,
            &Proxy::for_registry(&registry).unwrap(),
            tag,
            image(vec![base, linking()]),
        )
        .await;
        client.pull(&reference).await.unwrap();
        let (_, info) = client.status_verbose(&reference, true).await.unwrap();
        let info: Value = serde_json::from_str(&info["info"]).unwrap();
        let top = info["layers"][2].as_str().unwrap().to_string();
        let dir = crius.layers_dir().join(top.trim_start_matches("sha256:"));
        assert_eq!(std::fs::read(dir.join("copy")).unwrap(), content, "{tag}");
        keys.push((reference, top));
    }
    assert_ne!(
        keys[0].1, keys[1].1,
        "one store entry for two different copies"
    );
    client.remove(&keys[0].0).await.unwrap();
    let dir = crius
        .layers_dir()
        .join(keys[1].1.trim_start_matches("sha256:"));
    assert_eq!(std::fs::read(dir.join("copy")).unwrap(), b"from base b\n");
    assert!(
        !crius
            .layers_dir()
            .join(keys[0].1.trim_start_matches("sha256:"))
            .exists()
    );
}
