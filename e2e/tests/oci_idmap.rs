//! Integration tests (root): id-mapped mounts, recursive mount attributes, nosymfollow and
//! tmpcopyup through the real `crius oci` binary on busybox bundles.

mod oci_common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_common::*;
use serde_json::{Value, json};

const MAP: u32 = 100_000;

fn assert_gone(rt: &Runtime, id: &str, b: &Bundle) {
    assert!(!rt.root.path().join(id).exists(), "state dir left behind");
    assert!(cgroup_dirs(&b.cgroup).is_empty(), "cgroup left behind");
    assert!(
        host_mounts_under(&b.rootfs()).is_empty(),
        "mounts left: {:?}",
        host_mounts_under(&b.rootfs())
    );
}

fn chown_r(uid: u32, paths: &[&Path]) {
    let mut c = Command::new("chown");
    c.args(["-R", "-h", &format!("{uid}:{uid}")]);
    for p in paths {
        c.arg(p);
    }
    assert!(c.status().unwrap().success());
}

/// A bundle running `script` (output to /obs/out.txt), with its rootfs and /obs owned by the
/// container's root when `userns` is set.
fn bundle(script: &str, userns: bool) -> Bundle {
    let mut b = Bundle::new(&["sh", "-c", &format!("{{ {script} ; }} > /obs/out.txt 2>&1")]);
    if userns {
        let map = json!([{"containerID": 0, "hostID": MAP, "size": 65536}]);
        b.config["linux"]["uidMappings"] = map.clone();
        b.config["linux"]["gidMappings"] = map;
        ns_push(&mut b, json!({"type": "user"}));
        chown_r(MAP, &[&b.rootfs(), &b.obs()]);
    }
    b
}

fn ns_push(b: &mut Bundle, ns: Value) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(ns);
}

fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

/// A host directory in the bundle dir, owned by host root, with a file owned by 1000.
fn host_dir(b: &Bundle, name: &str) -> PathBuf {
    let d = b.path().join(name);
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("f1000"), b"x").unwrap();
    std::os::unix::fs::chown(d.join("f1000"), Some(1000), Some(1000)).unwrap();
    d
}

/// create, start, wait, delete; the script's output.
fn run(rt: &Runtime, b: &Bundle, tag: &str) -> String {
    let id = format!("{tag}-{}", unique());
    let out = rt.create(&id, b, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert_gone(rt, &id, b);
    std::fs::read_to_string(b.obs().join("out.txt")).unwrap_or_default()
}

/// A create that must fail; its stderr.
fn create_fails(rt: &Runtime, b: &Bundle, tag: &str) -> String {
    let id = format!("{tag}-{}", unique());
    let out = rt.create(&id, b, &[]);
    assert!(!out.status.success(), "create of {tag} succeeded");
    assert_gone(rt, &id, b);
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).collect()
}

/// A host bind mount (a submount of a source tree), unmounted on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn bind(src: &Path, dst: &Path) -> HostMount {
        std::fs::create_dir_all(dst).unwrap();
        nix::mount::mount(
            Some(src),
            dst,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        HostMount(dst.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn idmap_with_the_containers_mapping_shows_host_ids_shifted_into_the_container() {
    let rt = Runtime::crius();
    let mut b = bundle(
        "stat -c %u:%g /vol /vol/f1000 /plain; touch /vol/new; stat -c %u:%g /vol/new",
        true,
    );
    let vol = host_dir(&b, "vol");
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": "vol", "options": ["rbind", "idmap"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/plain", "type": "bind", "source": vol, "options": ["rbind"]}),
    );
    let out = run(&rt, &b, "idmap");
    // Host root is the container's root through the id-mapped mount (nobody without it), host
    // 1000 is container 1000, and what container root creates belongs to host root.
    assert_eq!(
        lines(&out),
        ["0:0", "1000:1000", "65534:65534", "0:0"],
        "{out}"
    );
    let m = std::fs::metadata(vol.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[test]
fn a_mount_with_its_own_mappings_uses_them_not_the_containers() {
    let rt = Runtime::crius();
    let mut b = bundle("stat -c %u:%g /own /own/f1000; touch /own/new", true);
    let own = host_dir(&b, "own");
    // Host 0 → container 1000 (host MAP+1000) and host 1000 unmapped.
    let map = json!([{"containerID": 0, "hostID": MAP + 1000, "size": 1}]);
    add_mount(
        &mut b,
        json!({"destination": "/own", "type": "bind", "source": own, "options": ["bind", "idmap"],
               "uidMappings": map, "gidMappings": map}),
    );
    let out = run(&rt, &b, "ownmap");
    let l = lines(&out);
    assert_eq!(l[..2], ["1000:1000", "65534:65534"], "{out}");
    // The container's root (host MAP) has no on-disk id through this mapping: no new files.
    assert!(l[2].contains("Value too large"), "{out}");
}

#[test]
fn own_mappings_work_without_a_container_user_namespace() {
    let rt = Runtime::crius();
    let mut b = bundle("stat -c %u:%g /own", false);
    let own = host_dir(&b, "own");
    let map = json!([{"containerID": 0, "hostID": 4242, "size": 1}]);
    add_mount(
        &mut b,
        json!({"destination": "/own", "type": "bind", "source": own, "options": ["bind"],
               "uidMappings": map, "gidMappings": map}),
    );
    assert_eq!(lines(&run(&rt, &b, "ownnouserns")), ["4242:4242"]);
}

/// `tree/` (host root) with `tree/sub` a host bind mount of `subsrc/` (host root too).
fn tree_with_submount(b: &Bundle) -> (PathBuf, HostMount) {
    let tree = host_dir(b, "tree");
    let sub = host_dir(b, "subsrc");
    std::fs::write(sub.join("target"), b"through the link").unwrap();
    std::os::unix::fs::symlink("target", sub.join("link")).unwrap();
    let m = HostMount::bind(&sub, &tree.join("sub"));
    (tree, m)
}

#[test]
fn ridmap_maps_the_submounts_and_idmap_only_the_top() {
    let rt = Runtime::crius();
    let mut b = bundle("stat -c %u:%g /r /r/sub /n /n/sub", true);
    let (tree, _m) = tree_with_submount(&b);
    for (dest, opt) in [("/r", "ridmap"), ("/n", "idmap")] {
        add_mount(
            &mut b,
            json!({"destination": dest, "type": "bind", "source": tree, "options": ["rbind", opt]}),
        );
    }
    let out = run(&rt, &b, "ridmap");
    assert_eq!(lines(&out), ["0:0", "0:0", "0:0", "65534:65534"], "{out}");
}

/// A container joining the user namespace of a parked `sleep` whose maps the test wrote.
struct ParkedUserns(std::process::Child);

impl ParkedUserns {
    fn new() -> ParkedUserns {
        let child = Command::new("unshare")
            .args(["--user", "sleep", "600"])
            .spawn()
            .unwrap();
        let me = ParkedUserns(child);
        let pid = me.0.id();
        // unshare(1) execs sleep in the same process once it has its namespace.
        let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_link(me.path()).ok().is_none_or(|l| l == ours) {
            assert!(std::time::Instant::now() < deadline, "unshare never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for f in ["uid_map", "gid_map"] {
            std::fs::write(format!("/proc/{pid}/{f}"), format!("0 {MAP} 65536\n")).unwrap();
        }
        me
    }
    fn path(&self) -> String {
        format!("/proc/{}/ns/user", self.0.id())
    }
}

impl Drop for ParkedUserns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn idmap_in_a_user_namespace_joined_by_path() {
    let parked = ParkedUserns::new();
    let rt = Runtime::crius();
    let mut b = bundle("cat /proc/self/uid_map; stat -c %u:%g /vol", false);
    chown_r(MAP, &[&b.rootfs(), &b.obs()]);
    ns_push(&mut b, json!({"type": "user", "path": parked.path()}));
    host_dir(&b, "vol");
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": "vol", "options": ["bind", "idmap"]}),
    );
    let out = run(&rt, &b, "joined");
    let l = lines(&out);
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"],
        "{out}"
    );
    assert_eq!(l[1], "0:0", "{out}");
}

#[test]
fn recursive_attributes_reach_submounts_and_nosymfollow_stops_symlinks() {
    let rt = Runtime::crius();
    let mut b = bundle(
        "grep -E ' /(r|r/sub|s|rs/sub) ' /proc/self/mountinfo | cut -d' ' -f5,6; \
         cat /s/link || echo s-refused; cat /rs/sub/link || echo rs-refused; \
         cat /r/sub/link",
        false,
    );
    let (tree, _m) = tree_with_submount(&b);
    let sub = b.path().join("subsrc");
    add_mount(
        &mut b,
        json!({"destination": "/r", "type": "bind", "source": tree, "options": ["rbind", "rnosuid", "rnoexec"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/s", "type": "bind", "source": sub, "options": ["bind", "nosymfollow"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/rs", "type": "bind", "source": tree, "options": ["rbind", "rnosymfollow"]}),
    );
    let out = run(&rt, &b, "rattr");
    let opts = |dest: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split(' ').next() == Some(dest))
            .unwrap_or_else(|| panic!("no {dest} in {out}"))
            .split(' ')
            .nth(1)
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect()
    };
    for o in ["nosuid", "noexec"] {
        assert!(opts("/r").contains(&o.to_string()), "{out}");
        assert!(opts("/r/sub").contains(&o.to_string()), "{out}");
    }
    assert!(opts("/s").contains(&"nosymfollow".to_string()), "{out}");
    assert!(
        opts("/rs/sub").contains(&"nosymfollow".to_string()),
        "{out}"
    );
    assert!(
        out.contains("s-refused") && out.contains("rs-refused"),
        "{out}"
    );
    // Without the option the same link is followed.
    assert!(out.contains("through the link"), "{out}");
}

#[test]
fn tmpcopyup_starts_the_tmpfs_with_the_images_files() {
    let rt = Runtime::crius();
    let mut b = bundle(
        "cat /etc/hello /etc/d/x; readlink /etc/l; stat -c %a /etc/d; \
         grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9; touch /etc/new && echo wrote",
        true,
    );
    let etc = b.rootfs().join("etc");
    std::fs::write(etc.join("hello"), b"hello\n").unwrap();
    std::fs::create_dir(etc.join("d")).unwrap();
    std::fs::write(etc.join("d/x"), b"deep\n").unwrap();
    std::os::unix::fs::symlink("hello", etc.join("l")).unwrap();
    chown_r(MAP, &[&etc]);
    std::fs::set_permissions(
        etc.join("d"),
        std::os::unix::fs::PermissionsExt::from_mode(0o710),
    )
    .unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "nosuid", "mode=755"]}),
    );
    let out = run(&rt, &b, "copyup");
    assert_eq!(
        lines(&out),
        ["hello", "deep", "hello", "710", "tmpfs", "wrote"],
        "{out}"
    );
    // The write went to the tmpfs, not the image.
    assert!(!etc.join("new").exists());
}

#[test]
fn bad_combinations_fail_with_a_clear_error_and_leave_nothing() {
    let rt = Runtime::crius();
    // idmap borrowing the container's mapping, but there is no user namespace.
    let mut b = bundle("true", false);
    host_dir(&b, "vol");
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": "vol", "options": ["bind", "idmap"]}),
    );
    let e = create_fails(&rt, &b, "nouserns");
    assert!(e.contains("needs a user namespace"), "{e}");

    // Mappings on a tmpfs.
    let mut b = bundle("true", true);
    let map = json!([{"containerID": 0, "hostID": MAP, "size": 1}]);
    add_mount(
        &mut b,
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
               "uidMappings": map, "gidMappings": map}),
    );
    let e = create_fails(&rt, &b, "tmpfsidmap");
    assert!(e.contains("must be bind mounts"), "{e}");

    // A missing source only shows up in the parent after the init exists: still cleaned up.
    let mut b = bundle("true", true);
    add_mount(
        &mut b,
        json!({"destination": "/vol", "type": "bind", "source": "/nonexistent-crius-idmap", "options": ["bind", "idmap"]}),
    );
    let e = create_fails(&rt, &b, "nosrc");
    assert!(e.contains("/nonexistent-crius-idmap"), "{e}");
}
