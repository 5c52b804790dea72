//! Specs of containers with image volumes (CRI `Mount.image`).

use std::path::Path;

use oci_spec::runtime::Mount;

use super::tests::{Fixture, opts};
use super::*;
use crate::api;

fn image_mount(dest: &str) -> api::Mount {
    api::Mount {
        container_path: dest.into(),
        image: Some(api::ImageSpec {
            image: "sha256:0123".into(),
            ..Default::default()
        }),
        readonly: true,
        ..Default::default()
    }
}

fn mounts_of(f: &Fixture, mounts: Vec<api::Mount>) -> Result<Vec<Mount>, SpecError> {
    let cfg = api::ContainerConfig {
        mounts,
        ..Default::default()
    };
    Ok(f.spec_with(&cfg, &opts())?
        .mounts()
        .clone()
        .unwrap_or_default())
}

#[test]
fn image_volumes_bind_their_overlay_read_only() {
    let f = Fixture::new();
    let host = f.files.join("shm").to_string_lossy().to_string();
    let plain = api::Mount {
        container_path: "/data".into(),
        host_path: host,
        ..Default::default()
    };
    // Mount 1 is the image volume: it binds `<volumes>/1`.
    let all = mounts_of(&f, vec![plain, image_mount("/vol/")]).unwrap();
    let vol = all
        .iter()
        .find(|m| m.destination() == Path::new("/vol"))
        .unwrap();
    assert_eq!(vol.typ().as_deref(), Some("bind"));
    assert_eq!(
        vol.source().as_deref(),
        Some(Path::new("/run/c1/volumes/1"))
    );
    let o = vol.options().clone().unwrap();
    assert_eq!(o, ["rbind", "rprivate", "ro"].map(String::from));
    assert!(vol.uid_mappings().is_none());
}

#[test]
fn image_volume_requests_that_are_refused() {
    let f = Fixture::new();
    let mut writable = image_mount("/vol");
    writable.readonly = false;
    assert!(matches!(
        mounts_of(&f, vec![writable]),
        Err(SpecError::InvalidArgument(_))
    ));
    let mut both = image_mount("/vol");
    both.host_path = "/tmp".into();
    assert!(matches!(
        mounts_of(&f, vec![both]),
        Err(SpecError::InvalidArgument(_))
    ));
    let mut mapped = image_mount("/vol");
    mapped.uid_mappings = vec![api::IdMapping {
        host_id: 1000,
        container_id: 0,
        length: 1,
    }];
    assert!(matches!(
        mounts_of(&f, vec![mapped]),
        Err(SpecError::InvalidArgument(_))
    ));
    // Neither an image nor a host path.
    let mut empty = image_mount("/vol");
    empty.image = None;
    assert!(matches!(
        mounts_of(&f, vec![empty]),
        Err(SpecError::InvalidArgument(_))
    ));
}

/// An image volume's root with `data/file.txt`, a symlink leading out of it and one inside it.
fn volume_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/nested")).unwrap();
    std::fs::write(dir.path().join("data/file.txt"), "x").unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink("data/nested", dir.path().join("in")).unwrap();
    dir
}

fn sub_path(path: &str) -> api::Mount {
    api::Mount {
        image_sub_path: path.into(),
        ..image_mount("/vol")
    }
}

#[test]
fn an_image_sub_path_binds_only_that_file_or_directory() {
    let root = volume_root();
    let real = std::fs::canonicalize(root.path()).unwrap();
    let source = |p: &str| mounts::image_sub_source(root.path(), &sub_path(p));
    assert_eq!(source("").unwrap(), root.path());
    assert_eq!(source("data").unwrap(), real.join("data"));
    assert_eq!(
        source("./data/file.txt").unwrap(),
        real.join("data/file.txt")
    );
    assert_eq!(source("in").unwrap(), real.join("data/nested"));
}

#[test]
fn image_sub_paths_that_escape_or_are_missing_are_refused() {
    let root = volume_root();
    let source = |p: &str| mounts::image_sub_source(root.path(), &sub_path(p));
    for escaping in ["/data", "../data", "data/../../etc", "out", "out/passwd"] {
        assert!(
            matches!(source(escaping), Err(SpecError::InvalidArgument(_))),
            "{escaping}: {:?}",
            source(escaping)
        );
    }
    assert!(matches!(source("nope"), Err(SpecError::NotFound(_))));
    assert!(matches!(source("data/nope"), Err(SpecError::NotFound(_))));
}
