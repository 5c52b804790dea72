//! Helpers for the integration tests: busybox bundles, a runtime with its own state root, and
//! cleanup of containers, cgroups and state even when a test fails.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

const APPLETS: [&str; 20] = [
    "sh", "cat", "cut", "echo", "grep", "hostname", "id", "ls", "sleep", "sort", "touch", "tr",
    "true", "wc", "head", "readlink", "stat", "mount", "env", "pwd",
];

/// The observation script: key=value lines describing what the process sees.
pub const OBSERVE: &str = r#"o=/obs/obs.txt
{
echo "pid=$$"
echo "hostname=$(hostname)"
echo "mounts=$(cut -d' ' -f5,6 /proc/self/mountinfo | sort | tr '\n' ';')"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Uid|Gid|Groups):' /proc/self/status | tr -s '\t ' '  '
echo "id=$(id)"
if touch /rootrw 2>/dev/null; then echo rootro=no; else echo rootro=yes; fi
echo "keys=$(cat /proc/keys 2>/dev/null | wc -c)"
echo "firmware=$(ls /sys/firmware | wc -l)"
echo "kcore=$(cat /proc/kcore 2>/dev/null | wc -c)"
echo "nofile=$(ulimit -n)"
echo "devs=$(ls /dev | tr '\n' ' ')"
echo "cwd=$(pwd)"
echo "env=$(env | grep -v '^PWD=\|^SHLVL=\|^_=' | sort | tr '\n' ' ')"
} > $o 2>&1
"#;

/// A bundle in a temp dir: rootfs with busybox, an `obs` dir bind-mounted at /obs.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
    pub cgroup: String,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("crius-oci-it")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        for d in ["proc", "sys", "dev", "tmp", "etc", "obs"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let obs = dir.path().join("obs");
        std::fs::create_dir(&obs).unwrap();
        std::fs::set_permissions(&obs, std::fs::Permissions::from_mode(0o777)).unwrap();
        let cgroup = format!("/crius-test-{}", unique());
        let config = base_config(args, &obs, &cgroup);
        Bundle {
            dir,
            config,
            cgroup,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    pub fn obs(&self) -> PathBuf {
        self.dir.path().join("obs")
    }
    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
    pub fn observations(&self) -> String {
        std::fs::read_to_string(self.obs().join("obs.txt")).unwrap_or_default()
    }
}

pub fn base_config(args: &[&str], obs: &Path, cgroup: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm", "FOO=bar"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "crius-it",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/obs", "type": "bind", "source": obs, "options": ["rbind", "rw"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "cgroupsPath": cgroup,
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A runtime binary with its own state root; deletes its containers and cgroups on drop.
pub struct Runtime {
    pub bin: String,
    /// Arguments before runc's own (`oci` for the crius binary).
    pub prefix: Vec<String>,
    pub root: tempfile::TempDir,
    pub ids: std::cell::RefCell<Vec<String>>,
    pub cgroups: std::cell::RefCell<Vec<String>>,
}

impl Runtime {
    /// `crius oci` from the binary the e2e harness tests (`$CRIUS_BIN`, else target/debug).
    pub fn crius() -> Runtime {
        let mut rt = Runtime::with(&crius_e2e::daemon::crius_bin().display().to_string());
        rt.prefix = vec!["oci".to_string()];
        rt
    }
    pub fn runc() -> Runtime {
        Runtime::with("runc")
    }
    pub fn with(bin: &str) -> Runtime {
        Runtime {
            bin: bin.to_string(),
            prefix: Vec::new(),
            root: tempfile::Builder::new()
                .prefix("crius-oci-root")
                .tempdir()
                .unwrap(),
            ids: Default::default(),
            cgroups: Default::default(),
        }
    }

    /// The runtime command with its prefix and `--root`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(&self.prefix).arg("--root").arg(self.root.path());
        c
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut c = self.command();
        c.args(args);
        run_with_files(c)
    }

    /// Run and insist on success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "{} {:?} failed: {}{}",
            self.bin,
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn track(&self, id: &str, b: &Bundle) {
        self.ids.borrow_mut().push(id.to_string());
        self.cgroups.borrow_mut().push(b.cgroup.clone());
    }

    pub fn create(&self, id: &str, b: &Bundle, extra: &[&str]) -> Output {
        self.track(id, b);
        b.write();
        let bundle = b.path().to_str().unwrap().to_string();
        let mut args = vec!["create", "--bundle", &bundle];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd(&args)
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let st = self.state(id);
            if st["status"] == want {
                return st;
            }
            assert!(Instant::now() < deadline, "{id} never became {want}: {st}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Run with stdout/stderr in anonymous files, not pipes: a container init inherits the
/// runtime's stdio, so waiting for pipe EOF would wait for the container. Kills after 60s.
pub fn run_with_files(mut c: Command) -> Output {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    c.stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{c:?} timed out");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    out.rewind().unwrap();
    out.read_to_end(&mut stdout).unwrap();
    err.rewind().unwrap();
    err.read_to_end(&mut stderr).unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Directories of `cgroup` under every hierarchy that exist.
pub fn cgroup_dirs(cgroup: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(CGROUP_ROOT).unwrap().flatten() {
        let d = e.path().join(cgroup.trim_start_matches('/'));
        if d.is_dir() {
            out.push(d);
        }
    }
    out
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd(&["delete", "--force", id]);
        }
        for cg in self.cgroups.borrow().iter() {
            for d in cgroup_dirs(cg) {
                if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                for _ in 0..100 {
                    if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Mount points on the host that mention `path`.
pub fn host_mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(p))
        .map(str::to_string)
        .collect()
}

pub fn obs_map(s: &str) -> std::collections::BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| l.split_once(['=', ':']))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
