//! Integration tests (root): the real binary on busybox bundles.

mod oci_common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use oci_common::*;
use serde_json::json;

fn assert_gone(rt: &Runtime, id: &str, b: &Bundle) {
    assert!(!rt.root.path().join(id).exists(), "state dir left behind");
    assert!(
        cgroup_dirs(&b.cgroup).is_empty(),
        "cgroup left behind: {:?}",
        cgroup_dirs(&b.cgroup)
    );
    assert!(
        host_mounts_under(&b.rootfs()).is_empty(),
        "mounts left: {:?}",
        host_mounts_under(&b.rootfs())
    );
}

#[test]
fn create_start_observe_delete() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sh", "-c", OBSERVE]);
    let id = format!("life-{}", unique());
    let out = rt.create(&id, &b, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // Everything is set up before start: the init is in the cgroup, in its namespaces, and has
    // not run the user's program yet.
    assert!(cgroup_dirs(&b.cgroup).len() >= 5);
    let procs =
        std::fs::read_to_string(format!("{CGROUP_ROOT}/pids{}/cgroup.procs", b.cgroup)).unwrap();
    assert!(
        procs.lines().any(|l| l.trim() == pid.to_string()),
        "{procs}"
    );
    assert!(b.observations().is_empty());
    assert!(
        host_mounts_under(&b.rootfs()).is_empty(),
        "container mounts leaked to the host"
    );

    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let obs = b.observations();
    let m = obs_map(&obs);
    assert_eq!(m["pid"], "1", "{obs}");
    assert_eq!(m["hostname"], "crius-it");
    for mp in [
        "/ ",
        "/proc ",
        "/dev ",
        "/dev/pts ",
        "/dev/shm ",
        "/dev/mqueue ",
        "/sys ",
        "/sys/fs/cgroup ",
        "/sys/fs/cgroup/pids ",
        "/obs ",
        "/proc/keys ",
        "/sys/firmware ",
        "/proc/sys ",
    ] {
        assert!(
            m["mounts"].split(';').any(|l| l.starts_with(mp)),
            "{mp} missing in {}",
            m["mounts"]
        );
    }
    assert!(
        m["mounts"]
            .split(';')
            .any(|l| l == "/ ro,relatime" || l.starts_with("/ ro,")),
        "{}",
        m["mounts"]
    );
    assert!(
        m["mounts"]
            .split(';')
            .any(|l| l.starts_with("/proc/sys ro,")),
        "{}",
        m["mounts"]
    );
    assert_eq!(m["CapEff"], "0000000020000420");
    assert_eq!(m["CapBnd"], "0000000020000420");
    assert_eq!(m["NoNewPrivs"], "1");
    assert!(m["id"].starts_with("uid=0 gid=0"), "{obs}");
    assert_eq!(m["rootro"], "yes");
    assert_eq!(m["keys"], "0");
    assert_eq!(m["firmware"], "0");
    assert_eq!(m["kcore"], "0");
    assert_eq!(m["nofile"], "1024");
    assert_eq!(
        m["devs"],
        "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
    assert_eq!(m["env"], "FOO=bar HOME=/ PATH=/bin TERM=xterm");

    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn failed_create_leaves_nothing_behind() {
    let rt = Runtime::crius();
    let mut b = Bundle::new(&["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": "/nonexistent-crius-src", "options": ["rbind"]}));
    let id = format!("fail-{}", unique());
    let log = b.path().join("log.json");
    b.write();
    rt.track(&id, &b);
    let mut c = rt.command();
    c.args(["--log", log.to_str().unwrap(), "--log-format", "json"])
        .args(["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = run_with_files(c);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent-crius-src"), "{err}");
    let line = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("bind mount source"));
    assert!(last["time"].is_string());
    assert_gone(&rt, &id, &b);
}

use std::process::Command;

#[test]
fn joins_a_network_namespace_by_path() {
    let name = format!("crius-test-{}", unique());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success()
    );
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }
    let _ns = Netns(name.clone());
    let path = format!("/var/run/netns/{name}");
    let ino = std::fs::metadata(&path).unwrap().ino();

    let rt = Runtime::crius();
    let mut b = Bundle::new(&["sh", "-c", "readlink /proc/self/ns/net > /obs/obs.txt"]);
    b.config["linux"]["namespaces"][1] = json!({"type": "network", "path": path});
    let id = format!("netns-{}", unique());
    let out = rt.create(&id, &b, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    assert_eq!(b.observations().trim(), format!("net:[{ino}]"));
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn user_namespace_maps_container_root_to_host_100000() {
    let rt = Runtime::crius();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        &format!("cat /proc/self/uid_map /proc/self/gid_map > /obs/maps.txt; {OBSERVE}"),
    ]);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let st = Command::new("chown")
        .args([
            "-R",
            "-h",
            "100000:100000",
            b.rootfs().to_str().unwrap(),
            b.obs().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let id = format!("userns-{}", unique());
    let out = rt.create(&id, &b, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{uid_line}"
    );
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let maps = std::fs::read_to_string(b.obs().join("maps.txt")).unwrap();
    let maps: Vec<Vec<&str>> = maps
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps, vec![vec!["0", "100000", "65536"]; 2]);
    let m = obs_map(&b.observations());
    assert_eq!(m["pid"], "1", "{}", b.observations());
    assert!(m["id"].starts_with("uid=0"), "{}", m["id"]);
    assert_eq!(m["rootro"], "yes");
    assert_eq!(
        m["devs"],
        "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn exec_into_a_running_container_and_kill() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sleep", "30"]);
    let id = format!("exec-{}", unique());
    assert!(rt.create(&id, &b, &[]).status.success());
    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");

    let process = json!({
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
        "args": ["busybox", "id"],
        "env": ["PATH=/bin"],
        "cwd": "/tmp",
        "noNewPrivileges": true
    });
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let out = rt.ok(&["exec", "--process", pfile.to_str().unwrap(), &id]);
    assert!(out.trim().starts_with("uid=1000 gid=1000 groups="), "{out}");
    assert!(
        out.trim()
            .split("groups=")
            .nth(1)
            .unwrap()
            .split(',')
            .any(|g| g == "10"),
        "{out}"
    );
    // The runc short form, and the exit code passing through.
    let out = rt.cmd(&["exec", &id, "sh", "-c", "echo $$; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_ne!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // Detached, with a pid file: the process is in the container's cgroup.
    let pidfile = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "20",
    ]);
    let epid = std::fs::read_to_string(&pidfile).unwrap();
    let procs =
        std::fs::read_to_string(format!("{CGROUP_ROOT}/pids{}/cgroup.procs", b.cgroup)).unwrap();
    assert!(
        procs.lines().any(|l| l.trim() == epid.trim()),
        "{procs} vs {epid}"
    );

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn kill_all_signals_every_process_in_the_cgroup() {
    let rt = Runtime::crius();
    // No pid namespace: killing the init alone would leave the background sleep behind.
    let mut b = Bundle::new(&["sh", "-c", "sleep 40 & sleep 41; wait"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let id = format!("killall-{}", unique());
    assert!(rt.create(&id, &b, &[]).status.success());
    rt.ok(&["start", &id]);
    let procs = format!("{CGROUP_ROOT}/pids{}/cgroup.procs", b.cgroup);
    for _ in 0..200 {
        if std::fs::read_to_string(&procs).unwrap().lines().count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read_to_string(&procs).unwrap().lines().count(), 3);
    rt.ok(&["kill", "--all", &id, "9"]);
    rt.wait_status(&id, "stopped");
    for _ in 0..200 {
        if std::fs::read_to_string(&procs).unwrap().trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read_to_string(&procs).unwrap().trim(), "");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn pause_resume_and_force_delete() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sleep", "30"]);
    let id = format!("pause-{}", unique());
    assert!(rt.create(&id, &b, &[]).status.success());
    rt.ok(&["start", &id]);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    assert!(!rt.cmd(&["delete", &id]).status.success());
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);
}

fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and is owned by nobody else.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

#[test]
fn console_socket_receives_the_pty_master() {
    let rt = Runtime::crius();
    let mut b = Bundle::new(&["sh", "-c", "tty; echo hello-tty; stty size 2>/dev/null"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 40, "width": 100});
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let id = format!("tty-{}", unique());
    let out = rt.create(&id, &b, &["--console-socket", sock_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(&conn);
    rt.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    // Reading the master returns EIO once the slave side is closed.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("hello-tty"), "{text}");
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn pid_file_and_state_of_unknown_container() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["true"]);
    let id = format!("pidfile-{}", unique());
    let pidfile = b.path().join("init.pid");
    assert!(
        rt.create(&id, &b, &["--pid-file", pidfile.to_str().unwrap()])
            .status
            .success()
    );
    let pid: i64 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_eq!(rt.state(&id)["pid"].as_i64(), Some(pid));
    // Deleting a created container kills its init, like runc.
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
    let out = rt.cmd(&["state", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn systemd_cgroup_paths_need_the_flag_and_features_parse() {
    let rt = Runtime::crius();
    // The flag is runc's global one; `state` of an unknown id fails for the id, not the flag.
    let out = rt.cmd(&["--systemd-cgroup", "state", "x"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A systemd-form cgroupsPath without the flag is refused, naming the flag.
    let mut b = Bundle::new(&["true"]);
    b.config["linux"]["cgroupsPath"] = json!("system.slice:crius:x");
    let id = format!("sd-{}", unique());
    let o = rt.create(&id, &b, &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--systemd-cgroup"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(rt.cmd(&["state", &id]).status.code() != Some(0));
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("user"))
    );
}

#[test]
fn hooks_run_in_every_phase_with_the_state_on_stdin() {
    let rt = Runtime::crius();
    let mut b = Bundle::new(&["true"]);
    let out = b.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    let host_hook = |phase: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{phase}.json", out.display())]});
    // startContainer runs inside the container (after pivot_root): its path is the container's.
    b.config["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /obs/startContainer.json"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")]
    });
    let id = format!("hooks-{}", unique());
    let o = rt.create(&id, &b, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let st: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{phase}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(st["id"], id.as_str());
        assert_eq!(st["pid"].as_i64(), Some(pid), "{phase}");
        assert_eq!(st["status"], "creating");
    }
    assert!(!out.join("poststart.json").exists());
    rt.ok(&["start", &id]);
    assert!(out.join("poststart.json").exists());
    rt.wait_status(&id, "stopped");
    assert!(b.obs().join("startContainer.json").exists());
    rt.ok(&["delete", &id]);
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("poststop.json")).unwrap()).unwrap();
    assert_eq!(st["status"], "stopped");
    assert_gone(&rt, &id, &b);
}

#[test]
fn failing_prestart_hook_fails_create_and_cleans_up() {
    let rt = Runtime::crius();
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    let id = format!("hookfail-{}", unique());
    let o = rt.create(&id, &b, &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("prestart"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_gone(&rt, &id, &b);
}

#[test]
fn seccomp_profile_is_enforced_with_and_without_no_new_privs() {
    for nnp in [true, false] {
        let rt = Runtime::crius();
        let mut b = Bundle::new(&[
            "sh",
            "-c",
            "mkdir /tmp/x 2> /obs/obs.txt; echo rc=$? >> /obs/obs.txt",
        ]);
        std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/mkdir")).unwrap();
        b.config["root"]["readonly"] = json!(false);
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        let id = format!("seccomp-{}", unique());
        let o = rt.create(&id, &b, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        rt.ok(&["start", &id]);
        rt.wait_status(&id, "stopped");
        let obs = b.observations();
        assert!(
            obs.contains("rc=1") && obs.contains("Operation not permitted"),
            "nnp={nnp}: {obs}"
        );
        assert!(!b.rootfs().join("tmp/x").exists());
        rt.ok(&["delete", &id]);
        assert_gone(&rt, &id, &b);
    }
}

#[test]
fn update_changes_cgroup_limits() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sleep", "30"]);
    let id = format!("update-{}", unique());
    assert!(rt.create(&id, &b, &[]).status.success());
    let res = b.path().join("res.json");
    std::fs::write(&res, json!({"pids": {"limit": 42}}).to_string()).unwrap();
    rt.ok(&["update", "--resources", res.to_str().unwrap(), &id]);
    let max = std::fs::read_to_string(format!("{CGROUP_ROOT}/pids{}/pids.max", b.cgroup)).unwrap();
    assert_eq!(max.trim(), "42");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn no_pivot_moves_the_root() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sh", "-c", OBSERVE]);
    let id = format!("nopivot-{}", unique());
    let o = rt.create(&id, &b, &["--no-pivot"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let m = obs_map(&b.observations());
    assert_eq!(m["pid"], "1");
    assert_eq!(m["rootro"], "yes");
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn exec_with_a_tty_hands_over_a_pty_master() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sleep", "30"]);
    let id = format!("exectty-{}", unique());
    assert!(rt.create(&id, &b, &[]).status.success());
    rt.ok(&["start", &id]);
    let sock_path = b.path().join("exec.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let process = json!({
        "terminal": true,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "tty; echo exec-tty"],
        "env": ["PATH=/bin"],
        "cwd": "/"
    });
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, process.to_string()).unwrap();
    let pidfile = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--process",
        pfile.to_str().unwrap(),
        &id,
    ]);
    let (conn, _) = listener.accept().unwrap();
    let mut f = std::fs::File::from(recv_fd(&conn));
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("exec-tty"), "{text}");
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn exec_forwards_signals_and_returns_the_exit_code() {
    let rt = Runtime::crius();
    let b = Bundle::new(&["sleep", "30"]);
    let id = format!("execsig-{}", unique());
    assert!(rt.create(&id, &b, &[]).status.success());
    rt.ok(&["start", &id]);
    let ready = b.obs().join("ready");
    let mut c = rt.command();
    c.args(["exec", &id, "sh", "-c"])
        .arg("trap 'exit 7' TERM; touch /obs/ready; while true; do sleep 0.05; done")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    for _ in 0..500 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ready.exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);
}
