//! Smoke test of crius' cgroup v2 manager (`crius_libcontainer::cgroups`) on a real host whose
//! `/sys/fs/cgroup` is a pure cgroup2 mount: the VM of `hack/vm/` (see docs/testing-v2.md).
//!
//! It drives one container cgroup `/crius-v2-smoke-<pid>/pod/ctr` through the manager the
//! runtime uses: create (controllers enabled top-down from the real root), apply
//! (memory/cpu/cpuset/pids/io/hugetlb/unified/devices), updates, add_task, freeze/thaw, stats,
//! OOM accounting and destroy, and checks every step against what the kernel shows: interface
//! files, `/proc/<pid>/cgroup`, `/proc/<pid>/status` and the enforcement of the limits.
//!
//! Must run as root on a cgroup v2 host; it refuses to run elsewhere (exit 2). Everything it
//! creates is removed at the end, also on failure; processes are killed by PID or through the
//! test's own `cgroup.kill`. Prints one `ok:`/`FAIL:` line per check and a closing
//! `v2-smoke: N passed, N failed`; exits 1 if any check failed.

use std::fmt::Display;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crius_libcontainer::cgroups::v2::bpf;
use crius_libcontainer::cgroups::{
    CgroupVersion, DEFAULT_CGROUP_ROOT, OomSource, detect, manager,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

/// Controllers crius' v2 manager asks for (`WANTED_CONTROLLERS` in v2/mod.rs).
const WANTED: [&str; 8] = [
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "misc", "rdma",
];
const MIB: u64 = 1024 * 1024;

struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: impl Display) {
        if ok {
            self.passed += 1;
            println!("ok: {name}");
        } else {
            self.failed += 1;
            println!("FAIL: {name}: {detail}");
        }
    }

    /// Checks that `dir/file` (trimmed) equals `want`.
    fn file_eq(&mut self, dir: &Path, file: &str, want: &str) {
        let got = read(&dir.join(file));
        self.check(
            &format!("{file} = {want:?}"),
            got == want,
            format!("kernel shows {got:?}"),
        );
    }

    fn result<T, E: Display>(&mut self, name: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(name, true, "");
                Some(v)
            }
            Err(e) => {
                self.check(name, false, e);
                None
            }
        }
    }
}

fn read(p: &Path) -> String {
    match fs::read_to_string(p) {
        Ok(s) => s.trim().to_string(),
        Err(e) => format!("<cannot read {}: {e}>", p.display()),
    }
}

fn words(p: &Path) -> Vec<String> {
    read(p).split_whitespace().map(str::to_string).collect()
}

fn keyed(p: &Path, key: &str) -> Option<u64> {
    read(p).lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad resources {json}: {e}"))
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Owns the test's top cgroup and the processes it spawned; on drop (also after a panic) kills
/// them, by PID and through the top cgroup's `cgroup.kill`, and removes the tree leaf-first.
struct Cleanup {
    top: PathBuf,
    children: Vec<Child>,
}

impl Cleanup {
    fn adopt(&mut self, c: Child) -> Pid {
        let pid = Pid::from_raw(c.id() as i32);
        self.children.push(c);
        pid
    }

    fn reap(&mut self, pid: Pid) -> Option<std::process::ExitStatus> {
        let i = self
            .children
            .iter()
            .position(|c| c.id() as i32 == pid.as_raw())?;
        let mut c = self.children.remove(i);
        c.wait().ok()
    }

    fn kill(&mut self, pid: Pid) {
        let _ = kill(pid, Signal::SIGKILL);
        self.reap(pid);
    }
}

fn for_each_dir_leaf_first(dir: &Path, f: &mut impl FnMut(&Path)) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                for_each_dir_leaf_first(&e.path(), f);
            }
        }
    }
    f(dir);
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        assert!(
            self.top
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("crius-v2-smoke-"))
        );
        if self.top.exists() {
            let _ = fs::write(self.top.join("cgroup.freeze"), "0");
            let _ = fs::write(self.top.join("cgroup.kill"), "1");
        }
        for c in &mut self.children {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
        self.children.clear();
        for_each_dir_leaf_first(&self.top.clone(), &mut |d| {
            for _ in 0..100 {
                match fs::remove_dir(d) {
                    Ok(()) => return,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
            eprintln!("warning: could not remove {}", d.display());
        });
    }
}

/// A shell that waits for a line on stdin before doing `script`, so it acts only once it has
/// been moved into its cgroup.
fn spawn_sh(cleanup: &mut Cleanup, script: &str) -> (Pid, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read x; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let stdin = child.stdin.take().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (cleanup.adopt(child), stdin, out)
}

fn go(stdin: &mut ChildStdin) {
    stdin.write_all(b"go\n").expect("write to child");
}

fn lines_until_done(out: &mut BufReader<ChildStdout>) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        let l = l.trim().to_string();
        let end = l == "done";
        got.push(l);
        if end {
            break;
        }
    }
    got
}

fn move_to(dir: &Path, pid: Pid) -> std::io::Result<()> {
    fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// `hog MIB`: waits for a line on stdin, then allocates and touches MIB MiB.
fn hog(mib: usize) -> ! {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let mut v: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        v.push(vec![1u8; MIB as usize]);
    }
    println!("allocated {mib} MiB: not killed");
    std::process::exit(0);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hog") {
        hog(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256));
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("v2-smoke: must run as root");
        return ExitCode::from(2);
    }
    if detect() != CgroupVersion::V2 {
        eprintln!(
            "v2-smoke: {DEFAULT_CGROUP_ROOT} is not a cgroup2 mount (pure cgroup v2 host needed)"
        );
        return ExitCode::from(2);
    }
    let mut r = Report {
        passed: 0,
        failed: 0,
    };
    let started = Instant::now();
    run(&mut r);
    println!(
        "v2-smoke: {} passed, {} failed ({:.1}s)",
        r.passed,
        r.failed,
        started.elapsed().as_secs_f64()
    );
    if r.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(r: &mut Report) {
    let root = Path::new(DEFAULT_CGROUP_ROOT);
    let top_name = format!("crius-v2-smoke-{}", std::process::id());
    let top = root.join(&top_name);
    let pod = top.join("pod");
    let dir = pod.join("ctr");
    let root_subtree_before = words(&root.join("cgroup.subtree_control"));
    let root_offers = words(&root.join("cgroup.controllers"));
    println!(
        "kernel {}; root cgroup.controllers: {root_offers:?}; root subtree_control before: {root_subtree_before:?}",
        read(Path::new("/proc/sys/kernel/osrelease"))
    );
    let wanted: Vec<&str> = WANTED
        .into_iter()
        .filter(|c| root_offers.iter().any(|o| o == c))
        .collect();

    {
        let mut cleanup = Cleanup {
            top: top.clone(),
            children: Vec::new(),
        };
        lifecycle(r, &mut cleanup, root, &pod, &dir, &wanted);
    }
    r.check(
        "no test cgroup left behind",
        !top.exists(),
        format!("{} still exists", top.display()),
    );

    // Give the root back the subtree_control it had (the VM is thrown away anyway).
    for c in words(&root.join("cgroup.subtree_control")) {
        if !root_subtree_before.contains(&c) {
            let _ = fs::write(root.join("cgroup.subtree_control"), format!("-{c}"));
        }
    }
}

fn lifecycle(
    r: &mut Report,
    cleanup: &mut Cleanup,
    root: &Path,
    pod: &Path,
    dir: &Path,
    wanted: &[&str],
) {
    let top = cleanup.top.clone();
    let rel = dir.strip_prefix(root).unwrap().display().to_string();
    let cgroups_path = format!("/{rel}");

    // ---- create ------------------------------------------------------------------------
    let Some(m) = r.result(
        &format!("manager({cgroups_path:?}, {DEFAULT_CGROUP_ROOT})"),
        manager(&cgroups_path, root),
    ) else {
        return;
    };
    r.check(
        "manager is V2",
        m.version() == CgroupVersion::V2,
        format!("{:?}", m.version()),
    );
    if r.result("create()", m.create()).is_none() {
        return;
    }
    r.check("create() made the leaf", dir.is_dir(), dir.display());
    r.result("create() again (idempotent)", m.create());
    for (name, d) in [("root", root), ("top", top.as_path()), ("pod", pod)] {
        let sc = words(&d.join("cgroup.subtree_control"));
        let missing: Vec<_> = wanted
            .iter()
            .filter(|c| !sc.iter().any(|s| s == *c))
            .collect();
        r.check(
            &format!("{name} cgroup.subtree_control enables {wanted:?}"),
            missing.is_empty(),
            format!("has {sc:?}, missing {missing:?}"),
        );
    }
    let ctrl = words(&dir.join("cgroup.controllers"));
    r.check(
        "leaf cgroup.controllers has every wanted controller",
        wanted.iter().all(|c| ctrl.iter().any(|s| s == c)),
        format!("{ctrl:?}"),
    );
    r.file_eq(dir, "cgroup.subtree_control", "");

    // ---- add_task ----------------------------------------------------------------------
    let sleeper = cleanup.adopt(
        Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawn sleep"),
    );
    r.result("add_task(sleeper)", m.add_task(sleeper));
    let own = read(Path::new(&format!("/proc/{sleeper}/cgroup")));
    r.check(
        "/proc/<sleeper>/cgroup is the container cgroup",
        own == format!("0::/{rel}"),
        &own,
    );
    r.check(
        "pids() == [sleeper]",
        m.pids().ok() == Some(vec![sleeper]),
        format!("{:?}", m.pids()),
    );
    r.file_eq(dir, "pids.current", "1");

    // ---- apply -------------------------------------------------------------------------
    let vda = fs::read_to_string("/sys/block/vda/dev")
        .ok()
        .map(|s| s.trim().to_string());
    let io_max = vda
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .map(|(maj, min)| {
            format!(
                r#","throttleReadBpsDevice":[{{"major":{maj},"minor":{min},"rate":1048576}}],
                   "throttleWriteIOPSDevice":[{{"major":{maj},"minor":{min},"rate":100}}]"#
            )
        })
        .unwrap_or_default();
    let hugetlb = dir.join("hugetlb.2MB.max").exists();
    let huge = if hugetlb {
        r#","hugepageLimits":[{"pageSize":"2MB","limit":4194304}]"#
    } else {
        ""
    };
    let spec = format!(
        r#"{{"memory":{{"limit":67108864,"reservation":33554432,"swap":134217728}},
            "cpu":{{"shares":1024,"quota":50000,"period":100000,"cpus":"0","mems":"0"}},
            "pids":{{"limit":32}},
            "blockIO":{{"weight":500{io_max}}},
            "unified":{{"memory.high":"100663296"}}{huge}}}"#
    );
    r.result(
        "apply(memory, cpu, cpuset, pids, io, unified, hugetlb)",
        m.apply(&res(&spec)),
    );
    r.file_eq(dir, "memory.max", "67108864");
    r.file_eq(dir, "memory.low", "33554432");
    r.file_eq(dir, "memory.high", "100663296");
    if dir.join("memory.swap.max").exists() {
        // OCI swap is memory+swap: 128 MiB - 64 MiB.
        r.file_eq(dir, "memory.swap.max", "67108864");
    } else {
        println!("note: no memory.swap.max (no swap accounting); swap not checked");
    }
    // shares 1024 -> weight 1 + (1024-2)*9999/262142 = 39.
    r.file_eq(dir, "cpu.weight", "39");
    r.file_eq(dir, "cpu.max", "50000 100000");
    r.file_eq(dir, "cpuset.cpus", "0");
    r.file_eq(dir, "cpuset.mems", "0");
    r.file_eq(dir, "cpuset.cpus.effective", "0");
    r.file_eq(dir, "pids.max", "32");
    // blkio weight 500 -> io.weight 1 + (500-10)*9999/990 = 4950 and device weight 200 ->
    // 1 + 190*9999/990 = 1920; with BFQ active both go unscaled to io.bfq.weight.
    let bfq = dir.join("io.bfq.weight").exists();
    let (wfile, w) = if bfq {
        ("io.bfq.weight", 500)
    } else {
        ("io.weight", 4950)
    };
    if dir.join(wfile).exists() {
        let content = read(&dir.join(wfile));
        r.check(
            &format!("{wfile} default {w}"),
            content.lines().next() == Some(format!("default {w}").as_str()),
            &content,
        );
    } else {
        println!("note: neither io.weight nor io.bfq.weight exists; weight not checked");
    }
    // Per-device weight, on its own so that a refusal does not hide the other checks. Without
    // BFQ the kernel takes "MAJ:MIN W" in io.weight only where blk-iocost is enabled on the
    // device (io.cost.qos), else EOPNOTSUPP; runc writes device weights only with BFQ.
    if let Some((maj, min)) = vda.as_deref().and_then(|d| d.split_once(':')) {
        let wd = m.apply(&res(&format!(
            r#"{{"blockIO":{{"weightDevice":[{{"major":{maj},"minor":{min},"weight":200}}]}}}}"#
        )));
        r.check(
            &format!("apply blockIO.weightDevice {maj}:{min} 200 ({wfile})"),
            wd.is_ok(),
            format!("{wd:?}"),
        );
        if bfq {
            let content = read(&dir.join(wfile));
            r.check(
                &format!("{wfile} has \"{maj}:{min} 200\""),
                content.lines().any(|l| l == format!("{maj}:{min} 200")),
                &content,
            );
        }
    }
    if let Some(dev) = &vda {
        let want = format!("{dev} rbps=1048576 wbps=max riops=max wiops=100");
        r.file_eq(dir, "io.max", &want);
    }
    if hugetlb {
        r.file_eq(dir, "hugetlb.2MB.max", "4194304");
        if dir.join("hugetlb.2MB.rsvd.max").exists() {
            r.file_eq(dir, "hugetlb.2MB.rsvd.max", "4194304");
        }
    }
    let status = read(Path::new(&format!("/proc/{sleeper}/status")));
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or("?")
        .to_string();
    r.check(
        "cpuset applies to the task: Cpus_allowed_list 0",
        allowed == "0",
        &allowed,
    );

    // ---- updates -----------------------------------------------------------------------
    r.result(
        "update memory limit 48 MiB",
        m.apply(&res(r#"{"memory":{"limit":50331648}}"#)),
    );
    r.file_eq(dir, "memory.max", "50331648");
    r.result(
        "update cpu quota only",
        m.apply(&res(r#"{"cpu":{"quota":25000}}"#)),
    );
    r.file_eq(dir, "cpu.max", "25000 100000");
    r.result(
        "update cpu period only",
        m.apply(&res(r#"{"cpu":{"period":200000}}"#)),
    );
    r.file_eq(dir, "cpu.max", "25000 200000");
    r.result(
        "update cpu quota -1",
        m.apply(&res(r#"{"cpu":{"quota":-1}}"#)),
    );
    r.file_eq(dir, "cpu.max", "max 200000");
    r.result(
        "update pids limit -1",
        m.apply(&res(r#"{"pids":{"limit":-1}}"#)),
    );
    r.file_eq(dir, "pids.max", "max");
    r.result(
        "update memory limit -1 (unlimited)",
        m.apply(&res(r#"{"memory":{"limit":-1}}"#)),
    );
    r.file_eq(dir, "memory.max", "max");
    if dir.join("memory.swap.max").exists() {
        r.file_eq(dir, "memory.swap.max", "max");
    }
    r.result(
        "update memory limit 48 MiB again",
        m.apply(&res(r#"{"memory":{"limit":50331648}}"#)),
    );
    r.file_eq(dir, "memory.max", "50331648");
    let bad = m.apply(&res(r#"{"memory":{"limit":50331648,"swap":1048576}}"#));
    r.check(
        "swap below the memory limit is refused",
        bad.is_err(),
        "apply succeeded",
    );
    let bad = m.apply(&res(r#"{"unified":{"memory.nonexistent":"1"}}"#));
    r.check(
        "unknown unified key is refused",
        bad.is_err(),
        "apply succeeded",
    );

    // ---- enforcement: pids ---------------------------------------------------------------
    r.result("pids limit 4", m.apply(&res(r#"{"pids":{"limit":4}}"#)));
    let forker_dir = dir.join("forker");
    fs::create_dir(&forker_dir).expect("mkdir forker");
    let (forker, mut fin, _fout) = spawn_sh(
        cleanup,
        "i=0; while [ $i -lt 8 ]; do sleep 300 & i=$((i+1)); done; exec sleep 1000",
    );
    r.result(
        "move forker into a sub-cgroup",
        move_to(&forker_dir, forker),
    );
    go(&mut fin);
    let hit = wait_for(Duration::from_secs(20), || {
        keyed(&dir.join("pids.events"), "max").is_some_and(|n| n > 0)
    });
    r.check(
        "pids.max enforced on the subtree (pids.events max > 0)",
        hit,
        read(&dir.join("pids.events")),
    );
    let cur: u64 = read(&dir.join("pids.current")).parse().unwrap_or(u64::MAX);
    r.check("pids.current <= 4", cur <= 4, cur);
    let pids = m.pids().unwrap_or_default();
    r.check(
        "pids() includes the sub-cgroup's processes",
        pids.contains(&sleeper) && pids.len() >= 2,
        format!("{pids:?}"),
    );
    let _ = fs::write(forker_dir.join("cgroup.kill"), "1");
    cleanup.reap(forker);
    let gone = wait_for(Duration::from_secs(10), || {
        read(&forker_dir.join("cgroup.events")).contains("populated 0")
    });
    r.check(
        "forker's sub-cgroup emptied",
        gone,
        read(&forker_dir.join("cgroup.events")),
    );
    let _ = fs::remove_dir(&forker_dir);
    r.result("pids limit 32", m.apply(&res(r#"{"pids":{"limit":32}}"#)));

    // ---- enforcement: memory / OOM -------------------------------------------------------
    r.check(
        "oom_source is memory.events",
        m.oom_source()
            == OomSource::V2 {
                memory_events: dir.join("memory.events"),
            },
        format!("{:?}", m.oom_source()),
    );
    let hog_dir = dir.join("hog");
    fs::create_dir(&hog_dir).expect("mkdir hog");
    let mut hog = Command::new(std::env::current_exe().unwrap())
        .args(["hog", "256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hog");
    let hog_pid = Pid::from_raw(hog.id() as i32);
    let mut hog_in = hog.stdin.take().unwrap();
    let mut hog_out = hog.stdout.take().unwrap();
    cleanup.adopt(hog);
    r.result("move hog into a sub-cgroup", move_to(&hog_dir, hog_pid));
    go(&mut hog_in);
    let st = cleanup.reap(hog_pid);
    let mut said = String::new();
    let _ = hog_out.read_to_string(&mut said);
    use std::os::unix::process::ExitStatusExt;
    r.check(
        "256 MiB hog under memory.max 48 MiB is OOM-killed",
        st.and_then(|s| s.signal()) == Some(9),
        format!("{st:?} {said}"),
    );
    let ooms = keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0);
    r.check(
        "memory.events oom_kill >= 1",
        ooms >= 1,
        read(&dir.join("memory.events")),
    );
    let _ = fs::remove_dir(&hog_dir);

    // ---- enforcement: cpu.max ------------------------------------------------------------
    r.result(
        "cpu quota 10ms/100ms",
        m.apply(&res(r#"{"cpu":{"quota":10000,"period":100000}}"#)),
    );
    r.file_eq(dir, "cpu.max", "10000 100000");
    let busy_dir = dir.join("busy");
    fs::create_dir(&busy_dir).expect("mkdir busy");
    let (busy, mut bin, _bout) = spawn_sh(cleanup, "while :; do :; done");
    r.result("move busy loop into a sub-cgroup", move_to(&busy_dir, busy));
    go(&mut bin);
    let throttled = wait_for(Duration::from_secs(20), || {
        keyed(&dir.join("cpu.stat"), "nr_throttled").is_some_and(|n| n > 0)
    });
    r.check(
        "cpu.max throttles (cpu.stat nr_throttled > 0)",
        throttled,
        read(&dir.join("cpu.stat")),
    );
    cleanup.kill(busy);
    wait_for(Duration::from_secs(10), || {
        read(&busy_dir.join("cgroup.events")).contains("populated 0")
    });
    let _ = fs::remove_dir(&busy_dir);
    r.result(
        "apply cpu burst 5ms, idle 1",
        m.apply(&res(r#"{"cpu":{"burst":5000,"idle":1}}"#)),
    );
    r.file_eq(dir, "cpu.max.burst", "5000");
    r.file_eq(dir, "cpu.idle", "1");
    r.result("apply cpu idle 0", m.apply(&res(r#"{"cpu":{"idle":0}}"#)));
    r.file_eq(dir, "cpu.idle", "0");

    // ---- devices (eBPF) ------------------------------------------------------------------
    let devs = r#"{"devices":[{"allow":false,"access":"rwm"},
                   {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#;
    r.result(
        "apply devices (deny all, allow /dev/null)",
        m.apply(&res(devs)),
    );
    r.result("apply devices again (replace)", m.apply(&res(devs)));
    let progs = bpf::attached_device_programs(dir);
    r.check(
        "exactly one device program attached",
        progs.as_ref().is_ok_and(|p| p.len() == 1),
        format!("{progs:?}"),
    );
    let (probe, mut pin, mut pout) = spawn_sh(
        cleanup,
        ": > /dev/null && echo null-ok; \
         if head -c1 /dev/zero >/dev/null 2>&1; then echo zero-ok; else echo zero-denied; fi; \
         echo done; exec sleep 1000",
    );
    r.result("add_task(probe)", m.add_task(probe));
    go(&mut pin);
    let got = lines_until_done(&mut pout);
    r.check(
        "device program enforced (/dev/null ok, /dev/zero denied)",
        got == ["null-ok", "zero-denied", "done"],
        format!("{got:?}"),
    );
    cleanup.kill(probe);

    // ---- freeze / thaw -------------------------------------------------------------------
    r.result("freeze()", m.freeze());
    r.check(
        "cgroup.events frozen 1",
        read(&dir.join("cgroup.events"))
            .lines()
            .any(|l| l == "frozen 1"),
        read(&dir.join("cgroup.events")),
    );
    r.file_eq(dir, "cgroup.freeze", "1");
    r.result("thaw()", m.thaw());
    r.check(
        "cgroup.events frozen 0",
        read(&dir.join("cgroup.events"))
            .lines()
            .any(|l| l == "frozen 0"),
        read(&dir.join("cgroup.events")),
    );

    // ---- stats -------------------------------------------------------------------------
    match m.stats() {
        Ok(s) => {
            println!("stats: {s:?}");
            r.check(
                "stats: cpu usage > 0",
                s.cpu.as_ref().is_some_and(|c| c.usage_ns > 0),
                format!("{:?}", s.cpu),
            );
            r.check(
                "stats: cpu throttling seen",
                s.cpu
                    .as_ref()
                    .is_some_and(|c| c.nr_throttled > 0 && c.throttled_ns > 0),
                format!("{:?}", s.cpu),
            );
            let mem = s.memory.clone().unwrap_or_default();
            r.check("stats: memory present", s.memory.is_some(), "None");
            r.check(
                "stats: memory usage > 0",
                mem.usage_bytes > 0,
                format!("{mem:?}"),
            );
            r.check(
                "stats: memory limit 48 MiB",
                mem.limit_bytes == Some(50331648),
                format!("{:?}", mem.limit_bytes),
            );
            r.check("stats: oom_kills >= 1", mem.oom_kills >= 1, mem.oom_kills);
            let p = s.pids.clone().unwrap_or_default();
            r.check(
                "stats: pids current 1, limit 32",
                s.pids.is_some() && p.current == 1 && p.limit == Some(32),
                format!("{:?}", s.pids),
            );
        }
        Err(e) => r.check("stats()", false, e),
    }

    // ---- destroy -----------------------------------------------------------------------
    let t = Instant::now();
    let busy_destroy = m.destroy();
    r.check(
        "destroy() with a live task fails and keeps the cgroup",
        busy_destroy.is_err() && dir.is_dir(),
        format!("{busy_destroy:?}"),
    );
    println!(
        "note: destroy() of a busy cgroup gave up after {:.2}s",
        t.elapsed().as_secs_f64()
    );
    cleanup.kill(sleeper);
    wait_for(Duration::from_secs(10), || {
        read(&dir.join("cgroup.events")).contains("populated 0")
    });
    // A nested cgroup made inside the container must go too (leaf-first).
    fs::create_dir_all(dir.join("nested/deeper")).expect("mkdir nested");
    r.result("destroy()", m.destroy());
    r.check("container cgroup removed", !dir.exists(), dir.display());
    r.result("destroy() again (missing is ok)", m.destroy());
    r.check(
        "parents are left to their owner (pod still exists)",
        pod.is_dir(),
        pod.display(),
    );
}
