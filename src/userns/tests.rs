use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use nix::sched::CloneFlags;

use super::*;

fn map(container_id: u32, host_id: u32, length: u32) -> api::IdMapping {
    api::IdMapping {
        host_id,
        container_id,
        length,
    }
}

fn pod(uids: Vec<api::IdMapping>, gids: Vec<api::IdMapping>) -> api::UserNamespace {
    api::UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids,
        gids,
    }
}

#[test]
fn pod_mode_needs_sane_mappings() {
    let ok = pod(vec![map(0, 65536, 65536)], vec![map(0, 65536, 65536)]);
    let maps = IdMaps::from_options(Some(&ok)).unwrap().unwrap();
    assert_eq!(maps.host_root(), (65536, 65536));
    assert_eq!(maps.uid_map_text(), "0 65536 65536\n");
    let (u, g) = maps.to_oci();
    assert_eq!(
        (u[0].host_id(), u[0].size(), g[0].container_id()),
        (65536, 65536, 0)
    );

    for (bad, why) in [
        (pod(vec![], vec![map(0, 1, 1)]), "needs uid"),
        (pod(vec![map(0, 1, 0)], vec![map(0, 1, 1)]), "length 0"),
        (
            pod(vec![map(0, u32::MAX, 2)], vec![map(0, 1, 1)]),
            "past the last",
        ),
        (pod(vec![map(1, 10, 5)], vec![map(0, 1, 1)]), "root"),
        (
            pod(vec![map(0, 100, 10), map(10, 105, 10)], vec![map(0, 1, 1)]),
            "overlap",
        ),
        (
            pod(vec![map(0, 100, 10), map(5, 200, 10)], vec![map(0, 1, 1)]),
            "overlap",
        ),
    ] {
        let err = IdMaps::from_options(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
    let two = pod(vec![map(0, 100, 10), map(10, 300, 10)], vec![map(0, 1, 1)]);
    assert!(IdMaps::from_options(Some(&two)).is_ok());
}

#[test]
fn node_mode_means_none_and_other_modes_are_refused() {
    assert_eq!(IdMaps::from_options(None).unwrap(), None);
    let node = api::UserNamespace {
        mode: NamespaceMode::Node as i32,
        ..Default::default()
    };
    assert_eq!(IdMaps::from_options(Some(&node)).unwrap(), None);
    let node_maps = api::UserNamespace {
        uids: vec![map(0, 1, 1)],
        ..node.clone()
    };
    assert!(IdMaps::from_options(Some(&node_maps)).is_err());
    for mode in [NamespaceMode::Container, NamespaceMode::Target] {
        let u = api::UserNamespace {
            mode: mode as i32,
            ..Default::default()
        };
        assert!(IdMaps::from_options(Some(&u)).is_err());
    }
}

/// A child in a new user + UTS namespace: maps written, hostname set, namespaces readable
/// until finish, and nothing left after.
#[test]
fn ns_child_makes_a_mapped_user_namespace() {
    let host = c"crius-userns-test";
    let child = NsChild::spawn(
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWUTS,
        Some(host),
    )
    .unwrap();
    child
        .write_maps("0 200000 65536\n", "0 300000 10\n")
        .unwrap();
    let user = std::fs::read_link(child.ns_path("user")).unwrap();
    assert_ne!(user, std::fs::read_link("/proc/self/ns/user").unwrap());
    let uid_map = std::fs::read_to_string(
        child
            .ns_path("user")
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("uid_map"),
    )
    .unwrap();
    assert!(uid_map.contains("200000"), "{uid_map}");
    child.finish().unwrap();
}

/// A layer seen through an id-mapped clone: root's files belong to the mapped host root; the
/// clone also works as an overlay layer named by /proc/self/fd.
#[test]
fn idmapped_layer_under_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    std::fs::create_dir(&layer).unwrap();
    std::fs::write(layer.join("f"), "x").unwrap();
    idmap::probe(&layer).unwrap();

    let child = NsChild::spawn(CloneFlags::CLONE_NEWUSER, None).unwrap();
    child
        .write_maps("0 400000 65536\n", "0 400000 65536\n")
        .unwrap();
    let ns = std::fs::File::open(child.ns_path("user")).unwrap();
    let tree = idmap::idmapped_tree(&layer, ns.as_fd(), false).unwrap();
    child.finish().unwrap();
    let seen = std::fs::metadata(format!("{}/f", idmap::fd_path(&tree))).unwrap();
    assert_eq!((seen.uid(), seen.gid()), (400000, 400000));

    let (upper, work, merged) = (
        dir.path().join("u"),
        dir.path().join("w"),
        dir.path().join("m"),
    );
    for d in [&upper, &work, &merged] {
        std::fs::create_dir(d).unwrap();
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        idmap::fd_path(&tree),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .unwrap();
    drop(tree);
    let through = std::fs::metadata(merged.join("f")).map(|m| m.uid());
    let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
    assert_eq!(through.unwrap(), 400000);
    assert_eq!(std::fs::metadata(layer.join("f")).unwrap().uid(), 0);
}
