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
    let stats = fx
        .unpack(&Layer::new().hard_link("h", "not/there").bytes())
        .expect("unpack leaves the link for the lower layers");
    assert_eq!(stats.lower_links.len(), 1);
    // The bottom layer has nothing below it.
    let err = copy_up_lower_links(&fx.dest, &stats.lower_links, &[]);
    assert!(
        matches!(err, Err(UnpackError::LinkTargetMissing { .. })),
        "{err:?}"
    );
    fx.assert_outside_untouched();
}

// --- hard links into lower layers ---------------------------------------------

/// A lower layer beside the fixture's layer directory, unpacked from `layer`.
fn lower(fx: &Fixture, name: &str, layer: Layer) -> PathBuf {
    let dir = fx.root.path().join(name);
    fs::create_dir(&dir).expect("create lower dir");
    let stats = unpack_layer(layer.bytes().as_slice(), Compression::None, &dir).expect("lower");
    assert!(stats.lower_links.is_empty());
    dir
}

/// Unpacks `layer` as the upper layer and fills its links from `lowers` (topmost first).
fn unpack_over(fx: &Fixture, layer: Layer, lowers: &[&Path]) -> Result<UnpackStats, UnpackError> {
    let mut stats = fx.unpack(&layer.bytes())?;
    stats.size += copy_up_lower_links(&fx.dest, &stats.lower_links, lowers)?;
    Ok(stats)
}

fn assert_nothing_else_touched(fx: &Fixture, lowers: &[&str]) {
    let mut expected: Vec<&str> = vec!["layer", "outside"];
    expected.extend_from_slice(lowers);
    expected.sort();
    assert_eq!(names(fx.root.path()), expected);
    assert_eq!(names(&fx.outside()), ["sentinel"]);
    assert_eq!(
        fs::read(fx.outside().join("sentinel")).expect("sentinel"),
        SENTINEL
    );
}

#[test]
fn hard_link_to_a_lower_file_gets_a_copy_of_its_content_and_metadata() {
    let fx = Fixture::new();
    let tool = owned(
        header("bin/tool", EntryType::Regular, 5, 0o4750),
        1234,
        4321,
    );
    let below = lower(&fx, "l0", Layer::new().dir("bin/").push(tool, b"hello"));
    if trusted_xattrs_supported(&fx) {
        let path = CString::new(below.join("bin/tool").as_os_str().as_bytes()).expect("path");
        // SAFETY: valid C strings and a value of the stated length.
        let rc = unsafe {
            nix::libc::lsetxattr(
                path.as_ptr(),
                c"user.origin".as_ptr(),
                b"l0".as_ptr().cast(),
                2,
                0,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }
    let stats = unpack_over(
        &fx,
        Layer::new()
            .hard_link("usr/bin/tool2", "bin/tool")
            .hard_link("usr/bin/tool3", "usr/bin/tool2"),
        &[&below],
    )
    .expect("unpack");
    assert_eq!(stats.size, 5);
    let copy = lstat(&fx.at("usr/bin/tool2"));
    assert_eq!(fs::read(fx.at("usr/bin/tool2")).expect("read"), b"hello");
    assert_eq!(copy.mode() & 0o7777, 0o4750);
    assert_eq!(
        (copy.uid(), copy.gid(), copy.mtime()),
        (1234, 4321, MTIME as i64)
    );
    // Names linked to the copy within the layer share it; the lower file is untouched.
    assert_eq!(lstat(&fx.at("usr/bin/tool3")).ino(), copy.ino());
    assert_eq!(copy.nlink(), 2);
    assert_ne!(lstat(&below.join("bin/tool")).ino(), copy.ino());
    assert_eq!(lstat(&below.join("bin/tool")).nlink(), 1);
    if trusted_xattrs_supported(&fx) {
        assert_eq!(
            xattr(&fx.at("usr/bin/tool2"), "user.origin").as_deref(),
            Some(&b"l0"[..])
        );
    }
    assert_nothing_else_touched(&fx, &["l0"]);
}

#[test]
fn the_topmost_lower_layer_with_the_file_provides_it() {
    let fx = Fixture::new();
    let l0 = lower(&fx, "l0", Layer::new().file("f", b"old"));
    let l1 = lower(&fx, "l1", Layer::new().file("f", b"new"));
    unpack_over(&fx, Layer::new().hard_link("g", "f"), &[&l1, &l0]).expect("unpack");
    assert_eq!(fs::read(fx.at("g")).expect("read"), b"new");
}

#[test]
fn a_lower_file_deleted_by_a_whiteout_or_hidden_by_an_opaque_dir_is_missing() {
    let fx = Fixture::new();
    let l0 = lower(
        &fx,
        "l0",
        Layer::new().file("f", b"x").dir("d/").file("d/f", b"x"),
    );
    let l1 = lower(&fx, "l1", Layer::new().file(".wh.f", b""));
    let err = unpack_over(&fx, Layer::new().hard_link("g", "f"), &[&l1, &l0]);
    assert!(
        matches!(err, Err(UnpackError::LinkTargetMissing { .. })),
        "{err:?}"
    );

    let fx = Fixture::new();
    let l0 = lower(&fx, "l0", Layer::new().file("f", b"x"));
    // The layer's own whiteout deletes the lower file, wherever it comes in the tar.
    let err = unpack_over(
        &fx,
        Layer::new().hard_link("g", "f").file(".wh.f", b""),
        &[&l0],
    );
    assert!(
        matches!(err, Err(UnpackError::LinkTargetMissing { .. })),
        "{err:?}"
    );

    let fx = Fixture::new();
    if !trusted_xattrs_supported(&fx) {
        return;
    }
    let l0 = lower(&fx, "l0", Layer::new().dir("d/").file("d/f", b"x"));
    let l1 = lower(
        &fx,
        "l1",
        Layer::new().dir("d/").file("d/.wh..wh..opq", b""),
    );
    let err = unpack_over(&fx, Layer::new().hard_link("g", "d/f"), &[&l1, &l0]);
    assert!(
        matches!(err, Err(UnpackError::LinkTargetMissing { .. })),
        "{err:?}"
    );
    let err = unpack_over(
        &Fixture::new(),
        Layer::new()
            .hard_link("g", "d/f")
            .file("d/.wh..wh..opq", b""),
        &[&l0],
    );
    assert!(
        matches!(err, Err(UnpackError::LinkTargetMissing { .. })),
        "{err:?}"
    );
}

#[test]
fn lower_links_cannot_resolve_through_a_lower_symlink_or_to_a_directory() {
    let fx = Fixture::new();
    let outside = fx.outside().display().to_string();
    let l0 = lower(
        &fx,
        "l0",
        Layer::new()
            .symlink("s", &outside)
            .symlink("r", "..")
            .dir("d/"),
    );
    for target in ["s/sentinel", "r/outside/sentinel"] {
        let fx2 = Fixture::new();
        let err = unpack_over(&fx2, Layer::new().hard_link("h", target), &[&l0]);
        assert!(
            matches!(err, Err(UnpackError::SymlinkInPath { .. })),
            "{target}: {err:?}"
        );
        fx2.assert_outside_untouched();
    }
    let err = unpack_over(&fx, Layer::new().hard_link("h", "d"), &[&l0]);
    assert!(
        matches!(err, Err(UnpackError::LinkTargetIsDirectory { .. })),
        "{err:?}"
    );
    assert_nothing_else_touched(&fx, &["l0"]);
}

#[test]
fn a_lower_symlink_or_fifo_is_copied_as_itself() {
    let fx = Fixture::new();
    let fifo = header("p", EntryType::Fifo, 0, 0o640);
    let l0 = lower(
        &fx,
        "l0",
        Layer::new()
            .symlink("s", "../outside/sentinel")
            .push(fifo, b""),
    );
    unpack_over(
        &fx,
        Layer::new()
            .hard_link("s2", "s")
            .hard_link("s3", "s2")
            .hard_link("p2", "p"),
        &[&l0],
    )
    .expect("unpack");
    assert_eq!(
        fs::read_link(fx.at("s2")).expect("readlink"),
        Path::new("../outside/sentinel")
    );
    assert_eq!(lstat(&fx.at("s3")).ino(), lstat(&fx.at("s2")).ino());
    let p2 = lstat(&fx.at("p2"));
    assert!(p2.file_type().is_fifo());
    assert_eq!(p2.mode() & 0o7777, 0o640);
    assert_nothing_else_touched(&fx, &["l0"]);
}

#[test]
fn a_link_replaced_later_in_its_layer_is_not_filled() {
    let fx = Fixture::new();
    let l0 = lower(&fx, "l0", Layer::new().file("f", b"lower"));
    unpack_over(
        &fx,
        Layer::new().hard_link("g", "f").file("g", b"upper"),
        &[&l0],
    )
    .expect("unpack");
    assert_eq!(fs::read(fx.at("g")).expect("read"), b"upper");
}

#[test]
fn errors_show_at_most_100_bytes_of_a_long_name() {
    let fx = Fixture::new();
    let long = format!("{}/../x", "a".repeat(10_000));
    let err = fx.unpack(
        &Layer::new()
            .pax(&[("path", long.as_bytes())])
            .file("x", b"")
            .bytes(),
    );
    let Err(UnpackError::PathEscapes { entry }) = err else {
        panic!("{err:?}");
    };
    assert!(
        entry.len() < 130 && entry.ends_with("(10005 bytes)"),
        "{entry}"
    );
    fx.assert_outside_untouched();
}
