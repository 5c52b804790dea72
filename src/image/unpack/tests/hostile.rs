//! Hostile layers: no entry may create or change anything outside its layer directory.

use super::*;

// --- hostile layers ----------------------------------------------------------

#[test]
fn dotdot_entry_cannot_escape_the_layer() {
    let fx = Fixture::new();
    let err = fx.unpack(&Layer::new().file("../x", b"evil").bytes());
    assert!(
        matches!(err, Err(UnpackError::PathEscapes { ref entry }) if entry == "../x"),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn dotdot_inside_a_path_cannot_escape_the_layer() {
    let fx = Fixture::new();
    let err = fx.unpack(&Layer::new().file("a/../../x", b"evil").bytes());
    assert!(
        matches!(err, Err(UnpackError::PathEscapes { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn pax_path_cannot_smuggle_dotdot() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .pax(&[("path", b"../outside/sentinel")])
        .file("innocent", b"evil");
    let err = fx.unpack(&layer.bytes());
    assert!(
        matches!(err, Err(UnpackError::PathEscapes { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn absolute_path_lands_inside_the_layer() {
    let fx = Fixture::new();
    fx.unpack(&Layer::new().file("/etc/x", b"inside").bytes())
        .expect("unpack");
    assert_eq!(fs::read(fx.at("etc/x")).expect("read"), b"inside");
    fx.assert_outside_untouched();
}

#[test]
fn symlink_parent_cannot_redirect_a_write_outside() {
    let fx = Fixture::new();
    let target = fx.outside().display().to_string();
    let err = fx.unpack(
        &Layer::new()
            .symlink("a", &target)
            .file("a/x", b"evil")
            .bytes(),
    );
    assert!(
        matches!(err, Err(UnpackError::SymlinkInPath { ref component, .. }) if component == "a"),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn relative_symlink_parent_cannot_redirect_a_write_outside() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("a", "..")
        .file("a/x", b"evil")
        .file("a/outside/sentinel", b"evil");
    let err = fx.unpack(&layer.bytes());
    assert!(
        matches!(err, Err(UnpackError::SymlinkInPath { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn file_replacing_a_symlink_does_not_write_through_it() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("a", "../outside/sentinel")
        .file("a", b"replaced");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert!(lstat(&fx.at("a")).is_file());
    assert_eq!(fs::read(fx.at("a")).expect("read"), b"replaced");
    fx.assert_outside_untouched();
}

#[test]
fn directory_replacing_a_symlink_does_not_merge_into_its_target() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("a", "../outside")
        .dir("a/")
        .file("a/x", b"inside");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert!(lstat(&fx.at("a")).is_dir());
    assert_eq!(fs::read(fx.at("a/x")).expect("read"), b"inside");
    fx.assert_outside_untouched();
}

#[test]
fn special_files_replacing_a_symlink_do_not_touch_its_target() {
    let fx = Fixture::new();
    let fifo = header("b", EntryType::Fifo, 0, 0o600);
    let layer = Layer::new()
        .symlink("a", "../outside/sentinel")
        .file(".wh.a", b"")
        .symlink("b", "../outside/sentinel")
        .push(fifo, b"");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert!(lstat(&fx.at("a")).file_type().is_char_device());
    assert!(lstat(&fx.at("b")).file_type().is_fifo());
    fx.assert_outside_untouched();
}

#[test]
fn whiteout_under_a_symlink_parent_cannot_delete_outside() {
    let fx = Fixture::new();
    let err = fx.unpack(
        &Layer::new()
            .symlink("a", "../outside")
            .file("a/.wh.sentinel", b"")
            .bytes(),
    );
    assert!(
        matches!(err, Err(UnpackError::SymlinkInPath { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn opaque_marker_under_a_symlink_parent_cannot_mark_outside() {
    let fx = Fixture::new();
    let err = fx.unpack(
        &Layer::new()
            .symlink("a", "../outside")
            .file("a/.wh..wh..opq", b"")
            .bytes(),
    );
    assert!(
        matches!(err, Err(UnpackError::SymlinkInPath { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn hard_link_cannot_target_outside_the_layer() {
    let fx = Fixture::new();
    let err = fx.unpack(&Layer::new().hard_link("h", "../outside/sentinel").bytes());
    assert!(
        matches!(err, Err(UnpackError::LinkTargetEscapes { ref target, .. }) if target == "../outside/sentinel"),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn hard_link_target_cannot_resolve_through_a_symlink() {
    let fx = Fixture::new();
    let err = fx.unpack(
        &Layer::new()
            .symlink("s", "../outside")
            .hard_link("h", "s/sentinel")
            .bytes(),
    );
    assert!(
        matches!(err, Err(UnpackError::SymlinkInPath { ref component, .. }) if component == "s"),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

#[test]
fn hard_link_to_a_symlink_links_the_symlink_not_its_target() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("s", "../outside/sentinel")
        .hard_link("h", "s");
    fx.unpack(&layer.bytes()).expect("unpack");
    assert!(lstat(&fx.at("h")).file_type().is_symlink());
    assert_eq!(lstat(&fx.at("h")).ino(), lstat(&fx.at("s")).ino());
    fx.assert_outside_untouched();
}

#[test]
fn hard_link_to_a_missing_target_is_rejected() {
    let fx = Fixture::new();
    let err = fx.unpack(&Layer::new().hard_link("h", "not/there").bytes());
    assert!(
        matches!(err, Err(UnpackError::LinkTargetMissing { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}
