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
use crius_e2e::layer::{Compression, Layer, TarBuilder, compress};
use crius_e2e::pods::{PodEnv, pod_config, shell_container};
use crius_e2e::proxy::{BlobFault, Proxy};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::sha256_digest;
use serde_json::{Value, json};
use tar::EntryType;
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

fn cases() -> Vec<Case> {
    use Code::{FailedPrecondition, NotFound, Unknown};
    use Expect::{Harmless, Runs};
    let climb_to_canary: &'static str =
        Box::leak(format!("{CLIMB}tmp/crius-e2e-hostile-canary/canary").into_boxed_str());
    let mut all = vec![
        // --- path tricks ---------------------------------------------------------------
        case(
            "a file named ../…/canary",
            one(|t| {
                t.raw(climb_to_canary, EntryType::Regular, None, 4, b"evil")
                    .map(drop)
            }),
            refused(Unknown, "escapes"),
        ),
        case(
            "a .. inside a path",
            one(|t| {
                t.raw("etc/../../x", EntryType::Regular, None, 4, b"evil")
                    .map(drop)
            }),
            refused(Unknown, "escapes"),
        ),
        case(
            "a PAX path with ..",
            one(|t| {
                t.pax(&[("path", b"../../outside")])?;
                t.file("innocent", 0o644, b"evil").map(drop)
            }),
            refused(Unknown, "escapes"),
        ),
        case(
            "an absolute path lands inside the image",
            one(|t| {
                t.raw(
                    &canary_path("canary"),
                    EntryType::Regular,
                    None,
                    6,
                    b"inner\n",
                )
                .map(drop)
            }),
            Runs("test \"$(cat /tmp/crius-e2e-hostile-canary/canary)\" = inner"),
        ),
        case(
            "a write through a symlink to a host directory",
            one(|t| {
                t.symlink("evil", CANARY_DIR)?;
                t.file("evil/canary", 0o644, b"evil").map(drop)
            }),
            refused(Unknown, "symlink"),
        ),
        case(
            "a write through a relative symlink climbing out",
            one(|t| {
                t.symlink("up", CLIMB)?;
                t.file("up/tmp/crius-e2e-hostile-canary/canary", 0o644, b"evil")
                    .map(drop)
            }),
            refused(Unknown, "symlink"),
        ),
        case(
            "a write through a symlink chain",
            one(|t| {
                t.symlink("a", "b")?;
                t.symlink("b", CANARY_DIR)?;
                t.file("a/canary", 0o644, b"evil").map(drop)
            }),
            refused(Unknown, "symlink"),
        ),
        case(
            "a symlink replaced by a directory",
            one(|t| {
                t.symlink("s", CANARY_DIR)?;
                t.dir("s", 0o755)?;
                t.file("s/canary", 0o644, b"inside\n").map(drop)
            }),
            Runs("test -d /s && ! test -L /s && test \"$(cat /s/canary)\" = inside"),
        ),
        case(
            "a symlink replaced by a file",
            one(|t| {
                t.symlink("s", &canary_path("canary"))?;
                t.file("s", 0o644, b"replaced\n").map(drop)
            }),
            Runs("! test -L /s && test \"$(cat /s)\" = replaced"),
        ),
        case(
            "a write through a lower layer's symlink",
            image(vec![
                layer(|t| t.symlink("evil", CANARY_DIR).map(drop)),
                layer(|t| t.file("evil/canary", 0o644, b"upper\n").map(drop)),
            ]),
            Runs("test -d /evil && test \"$(cat /evil/canary)\" = upper"),
        ),
        case(
            "an absolute symlink to a host file",
            one(|t| t.symlink("host-canary", &canary_path("canary")).map(drop)),
            Runs("test -L /host-canary && ! cat /host-canary"),
        ),
        case(
            "a file entry naming the layer root",
            one(|t| t.raw(".", EntryType::Regular, None, 1, b"x").map(drop)),
            refused(Unknown, "layer root"),
        ),
        case(
            "a NUL byte in a PAX path",
            one(|t| {
                t.pax(&[("path", b"a\0b")])?;
                t.file("x", 0o644, b"x").map(drop)
            }),
            refused(Unknown, "NUL"),
        ),
        case(
            "a name component over 255 bytes",
            one(|t| {
                t.pax(&[("path", "n".repeat(300).as_bytes())])?;
                t.file("x", 0o644, b"x").map(drop)
            }),
            refused(Unknown, "too long"),
        ),
        case(
            "a name component of 255 bytes",
            one(|t| {
                t.pax(&[("path", "n".repeat(255).as_bytes())])?;
                t.file("x", 0o644, b"x").map(drop)
            }),
            Runs("test -f /$(printf 'n%.0s' $(seq 255))"),
        ),
        // --- links ---------------------------------------------------------------------
        case(
            "a hard link climbing out",
            one(|t| {
                t.raw("h", EntryType::Link, Some(climb_to_canary), 0, b"")
                    .map(drop)
            }),
            refused(Unknown, "escapes"),
        ),
        case(
            "a hard link to an absolute host path",
            one(|t| {
                t.raw("h", EntryType::Link, Some(&canary_path("canary")), 0, b"")
                    .map(drop)
            }),
            refused(Unknown, "does not exist"),
        ),
        case(
            "a hard link through a symlink",
            one(|t| {
                t.symlink("s", CANARY_DIR)?;
                t.hardlink("h", "s/canary").map(drop)
            }),
            refused(Unknown, "symlink"),
        ),
        case(
            "a hard link to a lower layer's file",
            image(vec![
                layer(|t| {
                    t.dir("data", 0o755)?;
                    t.file_owned("data/lower.txt", 0o640, 1000, 1000, b"from below\n")
                        .map(drop)
                }),
                layer(|t| {
                    t.hardlink("data/upper.txt", "data/lower.txt")?;
                    t.hardlink("data/upper2.txt", "data/upper.txt")?;
                    t.hardlink("usr/bin/busybox-copy", "bin/busybox").map(drop)
                }),
            ]),
            Runs(
                "test \"$(cat /data/upper.txt)\" = 'from below' \
                 && test \"$(stat -c '%a %u %g %h' /data/upper.txt)\" = '640 1000 1000 2' \
                 && test \"$(stat -c %i /data/upper.txt)\" = \"$(stat -c %i /data/upper2.txt)\" \
                 && /usr/bin/busybox-copy true",
            ),
        ),
        case(
            "a hard link to a nonexistent target",
            one(|t| t.hardlink("h", "no/such/file").map(drop)),
            refused(Unknown, "does not exist"),
        ),
        case(
            "a hard link to a lower layer's directory",
            one(|t| t.hardlink("h", "etc").map(drop)),
            refused(Unknown, "is a directory"),
        ),
        case(
            "a hard link to a directory of its own layer",
            one(|t| {
                t.dir("d", 0o755)?;
                t.raw("h", EntryType::Link, Some("d"), 0, b"").map(drop)
            }),
            refused(Unknown, "is a directory"),
        ),
        case(
            "a hard link to a file a middle layer deleted",
            image(vec![
                layer(|t| t.file("gone", 0o644, b"x").map(drop)),
                layer(|t| t.whiteout("gone").map(drop)),
                layer(|t| t.hardlink("h", "gone").map(drop)),
            ]),
            refused(Unknown, "does not exist"),
        ),
        case(
            "a hard link to a file an opaque directory hides",
            image(vec![
                layer(|t| {
                    t.dir("d", 0o755)?;
                    t.file("d/f", 0o644, b"x").map(drop)
                }),
                layer(|t| {
                    t.dir("d", 0o755)?;
                    t.opaque("d").map(drop)
                }),
                layer(|t| t.hardlink("h", "d/f").map(drop)),
            ]),
            refused(Unknown, "does not exist"),
        ),
        case(
            "a hard link to a lower symlink pointing at the host",
            image(vec![
                layer(|t| t.symlink("s", &canary_path("canary")).map(drop)),
                layer(|t| t.hardlink("h", "s").map(drop)),
            ]),
            Runs("test -L /h && test \"$(readlink /h)\" = /tmp/crius-e2e-hostile-canary/canary"),
        ),
        case(
            "a hard link through a lower layer's symlink",
            image(vec![
                layer(|t| t.symlink("s", CANARY_DIR).map(drop)),
                layer(|t| t.hardlink("h", "s/canary").map(drop)),
            ]),
            refused(Unknown, "symlink"),
        ),
        // --- whiteouts -----------------------------------------------------------------
        case(
            "an opaque directory",
            image(vec![
                layer(|t| {
                    t.dir("d", 0o755)?;
                    t.file("d/old", 0o644, b"old").map(drop)
                }),
                layer(|t| {
                    t.dir("d", 0o755)?;
                    t.opaque("d")?;
                    t.file("d/new", 0o644, b"new").map(drop)
                }),
            ]),
            Runs("test -f /d/new && ! test -e /d/old"),
        ),
        case(
            "a whiteout of a nonexistent file",
            one(|t| t.whiteout("no/such").map(drop)),
            Runs("! test -e /no/such && test -x /bin/busybox"),
        ),
        case(
            "a whiteout climbing out",
            one(|t| {
                t.raw(
                    &format!("{CLIMB}tmp/crius-e2e-hostile-canary/.wh.canary"),
                    EntryType::Regular,
                    None,
                    0,
                    b"",
                )
                .map(drop)
            }),
            refused(Unknown, "escapes"),
        ),
        case(
            "a whiteout named .wh...",
            one(|t| {
                t.raw("etc/.wh...", EntryType::Regular, None, 0, b"")
                    .map(drop)
            }),
            refused(Unknown, "escapes"),
        ),
        case(
            "a whiteout of .",
            one(|t| {
                t.raw("etc/.wh..", EntryType::Regular, None, 0, b"")
                    .map(drop)
            }),
            refused(Unknown, "does not name a file"),
        ),
        case(
            "a whiteout through a symlink",
            one(|t| {
                t.symlink("s", CANARY_DIR)?;
                t.file("s/.wh.canary", 0o644, b"").map(drop)
            }),
            refused(Unknown, "symlink"),
        ),
        case(
            "an opaque marker through a symlink",
            one(|t| {
                t.symlink("s", CANARY_DIR)?;
                t.file("s/.wh..wh..opq", 0o644, b"").map(drop)
            }),
            refused(Unknown, "symlink"),
        ),
        case(
            "an opaque marker at the layer root",
            one(|t| {
                t.raw(".wh..wh..opq", EntryType::Regular, None, 0, b"")
                    .map(drop)
            }),
            Harmless,
        ),
        case(
            "an opaque marker as a directory entry",
            one(|t| {
                t.dir("d", 0o755)?;
                t.dir("d/.wh..wh..opq", 0o755).map(drop)
            }),
            Runs("test -d /d && ! test -e /d/.wh..wh..opq"),
        ),
        case(
            "aufs hard-link metadata",
            one(|t| {
                t.dir(".wh..wh.plnk", 0o700)?;
                t.file(".wh..wh.plnk/1.2", 0o644, b"x").map(drop)
            }),
            Harmless,
        ),
        // --- devices -------------------------------------------------------------------
        case(
            "a character device the container may use",
            one(|t| t.node("null-copy", EntryType::Char, 1, 3).map(drop)),
            Runs("test -c /null-copy && echo x > /null-copy"),
        ),
        case(
            "a block device node",
            one(|t| t.node("disk", EntryType::Block, 8, 0).map(drop)),
            Runs("test -b /disk && ! head -c1 /disk"),
        ),
        case(
            "a kernel memory device node",
            one(|t| t.node("kmem", EntryType::Char, 1, 2).map(drop)),
            Runs("test -c /kmem && ! head -c1 /kmem"),
        ),
        case(
            "a FIFO",
            one(|t| t.node("pipe", EntryType::Fifo, 0, 0).map(drop)),
            Runs("test -p /pipe"),
        ),
        // --- bombs ---------------------------------------------------------------------
        case(
            "a file declaring 1 TiB",
            one(|t| {
                t.raw("big", EntryType::Regular, None, 1 << 40, b"short")
                    .map(drop)
            }),
            refused(Unknown, "big"),
        ),
        case(
            "a gzip bomb (64 MiB from a tiny blob)",
            gzip_bomb(64),
            Runs("test \"$(stat -c %s /zeros)\" = 67108864"),
        ),
        case(
            "10000 entries",
            one(|t| {
                t.dir("many", 0o755)?;
                for i in 0..10_000 {
                    t.file(&format!("many/f{i}"), 0o644, b"")?;
                }
                Ok(())
            }),
            Harmless,
        ),
        case(
            "directories 2000 deep",
            one(|t| {
                let path = "d/".repeat(2000);
                t.pax(&[("path", format!("{path}f").as_bytes())])?;
                t.file("x", 0o644, b"deep").map(drop)
            }),
            refused(Unknown, "deeper than 256"),
        ),
        case(
            "directories 250 deep in a 16 KB path (over PATH_MAX)",
            one(|t| {
                let path = format!("{}/", "d".repeat(63)).repeat(250);
                t.pax(&[("path", format!("{path}f").as_bytes())])?;
                t.file("x", 0o644, b"deep").map(drop)
            }),
            Harmless,
        ),
        // --- metadata lies -------------------------------------------------------------
        case(
            "a config larger than its descriptor",
            Image {
                edit_manifest: Some(|m| bump(&mut m["config"]["size"], -1)),
                ..marker()
            },
            refused(Unknown, "bytes"),
        ),
        case(
            "a config smaller than its descriptor",
            Image {
                edit_manifest: Some(|m| bump(&mut m["config"]["size"], 1)),
                ..marker()
            },
            refused(Unknown, "bytes"),
        ),
        case(
            "rootfs.type not layers",
            Image {
                edit_config: Some(|c| c["rootfs"]["type"] = json!("squashfs")),
                ..marker()
            },
            refused(Unknown, "rootfs.type"),
        ),
        case(
            "a diff_id that is not the layer's",
            Image {
                edit_config: Some(|c| {
                    c["rootfs"]["diff_ids"][1] = json!(sha256_digest(b"another layer"))
                }),
                ..marker()
            },
            refused(Unknown, "uncompressed content"),
        ),
        case(
            "one diff_id too many",
            Image {
                edit_config: Some(|c| {
                    let extra = json!(sha256_digest(b"extra"));
                    c["rootfs"]["diff_ids"]
                        .as_array_mut()
                        .expect("diff_ids")
                        .push(extra);
                }),
                ..marker()
            },
            refused(Unknown, "diff ids"),
        ),
        case(
            "one diff_id too few",
            Image {
                edit_config: Some(|c| {
                    c["rootfs"]["diff_ids"]
                        .as_array_mut()
                        .expect("diff_ids")
                        .pop();
                }),
                ..marker()
            },
            refused(Unknown, "diff ids"),
        ),
        case(
            "a layer whose digest does not match (corrupted in transit)",
            Image {
                corrupt: Some(Corrupt::TopLayer),
                ..marker()
            },
            refused(Unknown, "sha256:"),
        ),
        case(
            "a config whose digest does not match (corrupted in transit)",
            Image {
                corrupt: Some(Corrupt::Config),
                ..marker()
            },
            refused(Unknown, "sha256:"),
        ),
        case(
            "a layer larger than its descriptor",
            Image {
                edit_manifest: Some(|m| bump(&mut m["layers"][1]["size"], -100)),
                ..marker()
            },
            refused(Unknown, "bytes"),
        ),
        case(
            "a layer smaller than its descriptor",
            Image {
                edit_manifest: Some(|m| bump(&mut m["layers"][1]["size"], 100)),
                ..marker()
            },
            refused(Unknown, "bytes"),
        ),
        case(
            "an artifact's config",
            Image {
                edit_manifest: Some(|m| {
                    m["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json")
                }),
                ..marker()
            },
            refused(FailedPrecondition, "not an image config"),
        ),
        case(
            "a layer descriptor with a config media type",
            Image {
                edit_manifest: Some(|m| m["layers"][1]["mediaType"] = json!(OCI_CONFIG)),
                ..marker()
            },
            refused(FailedPrecondition, "not an image layer"),
        ),
        case(
            "a gzip media type on a zstd blob",
            image(vec![HostileLayer {
                media_type: Compression::Gzip(6).oci_media_type(),
                ..recompressed(Compression::Zstd(3))
            }]),
            refused(Unknown, "gzip"),
        ),
        case(
            "a plain tar media type on a gzip blob",
            image(vec![HostileLayer {
                media_type: Compression::None.oci_media_type(),
                ..recompressed(Compression::Gzip(6))
            }]),
            refused(Unknown, "tar"),
        ),
        case(
            "an index entry whose size is off",
            Image {
                edit_index: Some(|i| bump(&mut i["manifests"][0]["size"], 1)),
                ..marker()
            },
            refused(Unknown, "bytes"),
        ),
        case(
            "an index whose entry for this platform is not an image manifest",
            Image {
                edit_index: Some(|i| {
                    i["manifests"][0]["mediaType"] = json!("application/vnd.oci.empty.v1+json")
                }),
                ..marker()
            },
            refused(NotFound, "no manifest for"),
        ),
        // --- a registry that lies where the loopback registry refuses the push ----------
        liar_case(
            "the lying registry's honest image",
            Some("honest"),
            Harmless,
        ),
        liar_case(
            "a manifest whose mediaType says index",
            Some("says-index"),
            refused(Unknown, "media type"),
        ),
        liar_case(
            "a digest header naming another manifest",
            Some("wrong-header"),
            refused(Unknown, "sha256:"),
        ),
        liar_case(
            "another manifest served for a digest",
            None,
            refused(Unknown, "sha256:"),
        ),
    ];
    all.shrink_to_fit();
    all
}

/// busybox plus a small marker layer, for the metadata lies.
fn marker() -> Image {
    one(|t| {
        t.dir("etc", 0o755)?;
        t.file("etc/hostile-marker", 0o644, b"marker\n").map(drop)
    })
}

fn bump(value: &mut Value, by: i64) {
    *value = json!(value.as_i64().expect("a number") + by);
}

/// The marker layer's tar, compressed with `compression` whatever the media type will say.
fn recompressed(compression: Compression) -> HostileLayer {
    let mut tar = TarBuilder::new();
    tar.file("recompressed", 0o644, b"x").expect("entry");
    let tar = tar.finish().expect("finish tar");
    HostileLayer {
        blob: Some(compress(&tar, compression).expect("compress")),
        tar,
        media_type: compression.oci_media_type(),
    }
}

/// One file of `mib` MiB of zeros, as concatenated gzip members (one per MiB, all the same):
/// a blob of a few kilobytes that unpacks to `mib` MiB.
fn gzip_bomb(mib: usize) -> Image {
    const MIB: usize = 1 << 20;
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(EntryType::Regular);
    header.set_path("zeros").expect("path");
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size((mib * MIB) as u64);
    header.set_mtime(crius_e2e::layer::MTIME);
    header.set_cksum();
    let zeros = vec![0u8; MIB];
    let zero_member = compress(&zeros, Compression::Gzip(9)).expect("gzip");
    let mut blob = compress(header.as_bytes(), Compression::Gzip(9)).expect("gzip");
    let mut tar = header.as_bytes().to_vec();
    for _ in 0..mib {
        blob.extend_from_slice(&zero_member);
        tar.extend_from_slice(&zeros);
    }
    // The end-of-archive marker: two zero blocks.
    blob.extend_from_slice(&compress(&[0u8; 1024], Compression::Gzip(9)).expect("gzip"));
    tar.extend_from_slice(&[0u8; 1024]);
    image(vec![HostileLayer {
        tar,
        blob: Some(blob),
        media_type: Compression::Gzip(9).oci_media_type(),
    }])
}

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
