//! The store's unpacked layers are what containers will be built from: stacked as overlayfs lower
//! directories they must give the image's filesystem, with whiteouts and opaque directories doing
//! their job.

use std::path::{Path, PathBuf};

use crius_e2e::images;
use crius_e2e::util::digest_hex;
use crius_e2e::{Crius, RegistryMode, TestRegistry};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

fn mount_overlay(lowers_top_first: &[PathBuf], target: &Path) -> Mounted {
    let lowerdir: Vec<String> = lowers_top_first
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!("lowerdir={}", lowerdir.join(":"));
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    )
    .unwrap_or_else(|e| panic!("mount overlay {options}: {e}"));
    Mounted(target.to_path_buf())
}

#[tokio::test]
async fn unpacked_layers_stack_into_the_image_filesystem() {
    let registry = TestRegistry::start(RegistryMode::Plain).await.unwrap();
    let pushed = images::push_multi(&registry, "e2e/multi", "v1")
        .await
        .unwrap();
    let crius = Crius::builder()
        .insecure(&registry.host())
        .start()
        .await
        .unwrap();
    let mut client = crius.images().await.unwrap();
    client.pull(&pushed.reference).await.unwrap();

    let lowers: Vec<PathBuf> = pushed
        .diff_ids
        .iter()
        .rev()
        .map(|d| crius.layers_dir().join(digest_hex(d)))
        .collect();
    let target = tempfile::tempdir().unwrap();
    let _mounted = mount_overlay(&lowers, target.path());
    let root = target.path();

    assert_eq!(
        std::fs::read(root.join("data/keep.txt")).unwrap(),
        b"kept\n"
    );
    assert_eq!(
        std::fs::read(root.join("data/added.txt")).unwrap(),
        b"from layer 3\n"
    );
    assert!(
        !root.join("data/remove-me.txt").exists(),
        "the whiteout did not hide the file"
    );
    let opaque: Vec<String> = std::fs::read_dir(root.join("opaque"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        opaque,
        ["new.txt"],
        "the opaque directory shows lower content"
    );
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read(root.join("etc/multi-marker")).unwrap(),
        b"multi\n"
    );
}
