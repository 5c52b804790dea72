//! Test support: fake cgroup trees (plain files in a tempdir that look like
//! what the kernel shows) and a guard for tests on the real hierarchies.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub(crate) const UNLIMITED: &str = "9223372036854771712";

type Hook = Box<dyn Fn(&Path)>;

thread_local! {
    // cargo runs each test on its own thread, so hooks never leak across tests.
    static MKDIR_HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    static WRITES: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
}

/// Called by the write helpers (test builds only): the order of writes is
/// what the memsw and devices tests check.
pub(crate) fn record_write(path: &Path, value: &str) {
    WRITES.with(|w| w.borrow_mut().push((path.to_path_buf(), value.to_string())));
}

/// Writes recorded so far on this thread as (file name, value); clears the log.
pub(crate) fn take_writes() -> Vec<(String, String)> {
    WRITES.with(|w| {
        w.borrow_mut()
            .drain(..)
            .map(|(p, v)| (p.file_name().unwrap().to_string_lossy().into_owned(), v))
            .collect()
    })
}

/// Called by `create_dirs` (test builds only) right after each mkdir, to
/// play the kernel's part of populating a new cgroup directory.
pub(crate) fn simulate_mkdir(dir: &Path) {
    MKDIR_HOOK.with(|h| {
        if let Some(f) = &*h.borrow() {
            f(dir)
        }
    });
}

fn set_hook(f: impl Fn(&Path) + 'static) {
    MKDIR_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}

pub(crate) fn put(dir: &Path, file: &str, content: &str) {
    fs::write(dir.join(file), content).unwrap();
}

pub(crate) fn get(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// The v1 hierarchies a container joins: the controllers and `name=systemd` (`systemd`).
pub(crate) const V1_SUBSYSTEMS: [&str; 12] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb",
    "net_cls", "net_prio", "systemd",
];

/// Files a v1 kernel shows in a new directory of `sub`'s hierarchy.
pub(crate) fn populate_v1(sub: &str, d: &Path) {
    for (f, v) in [
        ("cgroup.procs", ""),
        ("tasks", ""),
        ("notify_on_release", "0"),
    ] {
        put(d, f, v);
    }
    let files: &[(&str, &str)] = match sub {
        "cpu" => &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_burst_us", "0"),
            ("cpu.rt_period_us", "1000000"),
            ("cpu.rt_runtime_us", "0"),
            ("cpu.idle", "0"),
            (
                "cpu.stat",
                "nr_periods 7\nnr_throttled 2\nthrottled_time 5000\n",
            ),
        ],
        "cpuacct" => &[
            ("cpuacct.usage", "123456789"),
            ("cpuacct.usage_user", "100000000"),
            ("cpuacct.usage_sys", "23456789"),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => &[
            ("memory.limit_in_bytes", UNLIMITED),
            ("memory.memsw.limit_in_bytes", UNLIMITED),
            ("memory.soft_limit_in_bytes", UNLIMITED),
            ("memory.kmem.limit_in_bytes", UNLIMITED),
            ("memory.kmem.tcp.limit_in_bytes", UNLIMITED),
            ("memory.swappiness", "60"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
            ("memory.usage_in_bytes", "1000000"),
            ("memory.memsw.usage_in_bytes", "1200000"),
            (
                "memory.stat",
                "cache 10\nrss 20\ntotal_cache 300000\ntotal_rss 500000\ntotal_inactive_file 100000\ntotal_pgfault 42\ntotal_pgmajfault 3\n",
            ),
            ("cgroup.event_control", ""),
        ],
        "pids" => &[("pids.max", "max"), ("pids.current", "3")],
        "blkio" => &[
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ],
        "devices" => &[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm"),
        ],
        "freezer" => &[("freezer.state", "THAWED")],
        "hugetlb" => &[
            ("hugetlb.2MB.limit_in_bytes", UNLIMITED),
            ("hugetlb.1GB.limit_in_bytes", UNLIMITED),
        ],
        "net_cls" => &[("net_cls.classid", "0")],
        "net_prio" => &[("net_prio.ifpriomap", "")],
        _ => &[],
    };
    for (f, v) in files {
        put(d, f, v);
    }
}

/// A fake v1 root with the given hierarchies; new directories get
/// populated like the kernel would.
pub(crate) fn fake_v1(root: &Path, subs: &[&str]) {
    for sub in subs {
        let d = root.join(sub);
        fs::create_dir_all(&d).unwrap();
        populate_v1(sub, &d);
        if *sub == "cpuset" {
            put(&d, "cpuset.cpus", "0-3");
            put(&d, "cpuset.mems", "0");
        }
    }
    let root = root.to_path_buf();
    set_hook(move |dir| {
        let rel = dir.strip_prefix(&root).unwrap();
        let sub = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .to_string();
        populate_v1(&sub, dir);
    });
}

/// Files a v2 kernel shows for a directory with `controllers` enabled.
pub(crate) fn populate_v2(d: &Path, controllers: &str) {
    put(d, "cgroup.controllers", controllers);
    for (f, v) in [
        ("cgroup.subtree_control", ""),
        ("cgroup.procs", ""),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        (
            "cpu.stat",
            "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        ),
    ] {
        put(d, f, v);
    }
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    let mut files: Vec<(&str, &str)> = Vec::new();
    if has("cpu") {
        files.extend([
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("cpu.max.burst", "0"),
            ("cpu.idle", "0"),
        ]);
    }
    if has("cpuset") {
        files.extend([("cpuset.cpus", ""), ("cpuset.mems", "")]);
    }
    if has("memory") {
        files.extend([
            ("memory.max", "max"),
            ("memory.low", "0"),
            ("memory.swap.max", "max"),
            ("memory.current", "4096000"),
            ("memory.swap.current", "8192"),
            (
                "memory.stat",
                "anon 1000000\nfile 2000000\ninactive_file 96000\npgfault 11\npgmajfault 1\n",
            ),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 2\n"),
        ]);
    }
    if has("pids") {
        files.extend([("pids.max", "max"), ("pids.current", "2")]);
    }
    if has("io") {
        files.extend([("io.weight", ""), ("io.max", "")]);
    }
    if has("hugetlb") {
        files.extend([("hugetlb.2MB.max", "max"), ("hugetlb.2MB.rsvd.max", "max")]);
    }
    for (f, v) in files {
        put(d, f, v);
    }
}

/// A fake v2 root offering `controllers`; a new directory's
/// cgroup.controllers is what its parent enabled in subtree_control.
pub(crate) fn fake_v2(root: &Path, controllers: &str) {
    populate_v2(root, controllers);
    set_hook(|dir| {
        let parent = dir.parent().unwrap();
        // The manager appends "+ctrl" lines; the kernel would show names.
        let enabled: Vec<String> = fs::read_to_string(parent.join("cgroup.subtree_control"))
            .unwrap()
            .split_whitespace()
            .map(|t| t.trim_start_matches('+').to_string())
            .collect();
        populate_v2(dir, &enabled.join(" "));
    });
}

/// Lines written to an append-style file, in order.
pub(crate) fn lines(dir: &Path, file: &str) -> Vec<String> {
    get(dir, file).lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------
// Real hierarchies.

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Owns `/crius-test-<pid>-<n>` in each given hierarchy root, and child
/// processes; on drop (also when the test panics) kills those children by
/// PID and removes the directories leaf-first.
pub(crate) struct RealGuard {
    pub name: String,
    roots: Vec<PathBuf>,
    children: Vec<Child>,
}

impl RealGuard {
    pub(crate) fn new(roots: Vec<PathBuf>) -> Self {
        let name = format!(
            "crius-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        Self {
            name,
            roots,
            children: Vec::new(),
        }
    }

    pub(crate) fn base(&self, root: &Path) -> PathBuf {
        root.join(&self.name)
    }

    /// Keeps `child` to kill on drop; returns its PID.
    pub(crate) fn adopt(&mut self, child: Child) -> Pid {
        let pid = Pid::from_raw(child.id() as i32);
        self.children.push(child);
        pid
    }

    pub(crate) fn kill_children(&mut self) {
        for c in &mut self.children {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
        self.children.clear();
    }
}

fn rmdir_tree(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
    eprintln!("warning: could not remove {}", dir.display());
}

/// A frozen cgroup keeps even SIGKILLed tasks (v1), so thaw everything
/// under `dir` before killing.
fn thaw_tree(dir: &Path) {
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::write(dir.join("cgroup.freeze"), "0");
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                thaw_tree(&e.path());
            }
        }
    }
}

impl Drop for RealGuard {
    fn drop(&mut self) {
        // Never touch anything but our own test directories.
        assert!(self.name.starts_with("crius-test-"));
        for r in &self.roots {
            thaw_tree(&r.join(&self.name));
        }
        self.kill_children();
        for r in &self.roots {
            rmdir_tree(&r.join(&self.name));
        }
    }
}

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
