//! The hostile-registry cases of `hostile_images.rs`: each crafted image and what crius must
//! do with it (refuse it with a code, or take it harmlessly).

use crius_e2e::layer::compress;
use tar::EntryType;

use super::*;

pub(super) fn cases() -> Vec<Case> {
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
