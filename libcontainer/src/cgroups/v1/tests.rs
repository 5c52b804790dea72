use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::testutil::{
    self, V1_SUBSYSTEMS, fake_v1, get, lines, populate_v1, put, take_writes,
};
use super::super::{CgroupError, CgroupVersion, Manager, OomSource, manager_for};
use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn fake_manager(root: &Path, path: &str) -> Box<dyn Manager> {
    fake_v1(root, &V1_SUBSYSTEMS);
    let m = manager_for(CgroupVersion::V1, path, root).unwrap();
    m.create().unwrap();
    m
}

#[test]
fn create_makes_dirs_in_every_hierarchy_and_seeds_cpuset() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fake_manager(root, "/crius/pod1/ctr1");
    for sub in V1_SUBSYSTEMS {
        assert!(root.join(sub).join("crius/pod1/ctr1").is_dir(), "{sub}");
    }
    for d in ["crius", "crius/pod1", "crius/pod1/ctr1"] {
        let d = root.join("cpuset").join(d);
        assert_eq!(get(&d, "cpuset.cpus"), "0-3");
        assert_eq!(get(&d, "cpuset.mems"), "0");
    }
}

/// Another creator made `crius/pod1` a moment ago and has not filled its cpus and mems yet
/// (two creates under one new pod parent): this create fills them before using the path.
#[test]
fn create_fills_cpuset_dirs_another_creator_made() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fake_v1(root, &V1_SUBSYSTEMS);
    for d in ["crius", "crius/pod1"] {
        let d = root.join("cpuset").join(d);
        fs::create_dir(&d).unwrap();
        populate_v1("cpuset", &d);
        assert_eq!(get(&d, "cpuset.cpus"), "");
    }
    // One ancestor the other creator already filled with its own values: kept as they are.
    put(&root.join("cpuset/crius"), "cpuset.cpus", "1");
    let m = manager_for(CgroupVersion::V1, "/crius/pod1/ctr2", root).unwrap();
    m.create().unwrap();
    let d = |p: &str| root.join("cpuset").join(p);
    assert_eq!(get(&d("crius"), "cpuset.cpus"), "1");
    assert_eq!(get(&d("crius"), "cpuset.mems"), "0");
    for p in ["crius/pod1", "crius/pod1/ctr2"] {
        assert_eq!(get(&d(p), "cpuset.cpus"), "1", "{p}");
        assert_eq!(get(&d(p), "cpuset.mems"), "0", "{p}");
    }
    // Idempotent: a second create of the same path changes nothing and succeeds.
    take_writes();
    m.create().unwrap();
    assert_eq!(take_writes(), Vec::<(String, String)>::new());
}

#[test]
fn create_skips_unmounted_hierarchies() {
    let tmp = tempfile::tempdir().unwrap();
    fake_v1(tmp.path(), &["memory", "pids"]);
    let m = manager_for(CgroupVersion::V1, "/c", tmp.path()).unwrap();
    m.create().unwrap();
    assert!(tmp.path().join("memory/c").is_dir());
    assert!(!tmp.path().join("cpu").exists());
    // Needed but not mounted: a clear error naming the controller.
    let e = m.apply(&res(r#"{"cpu":{"shares":512}}"#)).unwrap_err();
    assert!(matches!(e, CgroupError::ControllerNotMounted("cpu")), "{e}");
    // Not needed: fine.
    m.apply(&res(r#"{"pids":{"limit":5}}"#)).unwrap();
}

#[test]
fn apply_writes_expected_values() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/crius/ctr");
    m.apply(&res(r#"{
        "memory": {"limit": 8388608, "reservation": 4194304, "swap": 16777216,
                   "swappiness": 10, "disableOOMKiller": true, "kernelTCP": 1048576},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0",
                "realtimePeriod": 1000000, "realtimeRuntime": 0, "idle": 0},
        "pids": {"limit": 10},
        "blockIO": {"weight": 300,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 20971520}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}
    }"#))
        .unwrap();
    let d = |s: &str| root.join(s).join("crius/ctr");
    assert_eq!(get(&d("memory"), "memory.limit_in_bytes"), "8388608");
    assert_eq!(get(&d("memory"), "memory.memsw.limit_in_bytes"), "16777216");
    assert_eq!(get(&d("memory"), "memory.soft_limit_in_bytes"), "4194304");
    assert_eq!(get(&d("memory"), "memory.swappiness"), "10");
    assert_eq!(get(&d("memory"), "memory.oom_control"), "1");
    assert_eq!(
        get(&d("memory"), "memory.kmem.tcp.limit_in_bytes"),
        "1048576"
    );
    assert_eq!(get(&d("cpu"), "cpu.shares"), "512");
    assert_eq!(get(&d("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(get(&d("cpu"), "cpu.cfs_period_us"), "100000");
    assert_eq!(get(&d("cpu"), "cpu.rt_period_us"), "1000000");
    assert_eq!(get(&d("cpu"), "cpu.rt_runtime_us"), "0");
    assert_eq!(get(&d("cpuset"), "cpuset.cpus"), "0");
    assert_eq!(get(&d("cpuset"), "cpuset.mems"), "0");
    assert_eq!(get(&d("pids"), "pids.max"), "10");
    // No CFQ blkio.weight in the fake (modern kernel): BFQ files are used.
    assert_eq!(get(&d("blkio"), "blkio.bfq.weight"), "300");
    assert_eq!(lines(&d("blkio"), "blkio.bfq.weight_device"), ["8:0 200"]);
    assert_eq!(
        lines(&d("blkio"), "blkio.throttle.read_bps_device"),
        ["8:0 1048576"]
    );
    assert_eq!(
        lines(&d("blkio"), "blkio.throttle.write_iops_device"),
        ["8:16 100"]
    );
    assert_eq!(get(&d("hugetlb"), "hugetlb.2MB.limit_in_bytes"), "20971520");
    assert_eq!(get(&d("net_cls"), "net_cls.classid"), "1048577");
    assert_eq!(lines(&d("net_prio"), "net_prio.ifpriomap"), ["eth0 5"]);
}

#[test]
fn unset_and_unlimited_values() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/c");
    take_writes();
    // 0 = unset: nothing is written.
    m.apply(&res(
        r#"{"cpu":{"shares":0,"quota":0,"period":0},"memory":{"limit":0}}"#,
    ))
    .unwrap();
    assert!(take_writes().is_empty());
    m.apply(&res(
        r#"{"cpu":{"quota":-1},"memory":{"limit":-1},"pids":{"limit":0}}"#,
    ))
    .unwrap();
    assert_eq!(get(&root.join("cpu/c"), "cpu.cfs_quota_us"), "-1");
    assert_eq!(get(&root.join("memory/c"), "memory.limit_in_bytes"), "-1");
    // Unlimited memory with swap unset lifts memsw too.
    assert_eq!(
        get(&root.join("memory/c"), "memory.memsw.limit_in_bytes"),
        "-1"
    );
    assert_eq!(get(&root.join("pids/c"), "pids.max"), "max");
}

#[test]
fn memsw_write_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/c");
    let mem = root.join("memory/c");
    let mem_writes = || {
        take_writes()
            .into_iter()
            .filter(|(f, _)| f.starts_with("memory.") && f.ends_with("limit_in_bytes"))
            .collect::<Vec<_>>()
    };
    let w = |f: &str, v: &str| (f.to_string(), v.to_string());

    // From unlimited (current limit > new memsw): limit must go first.
    take_writes();
    m.apply(&res(r#"{"memory":{"limit":8388608,"swap":16777216}}"#))
        .unwrap();
    assert_eq!(
        mem_writes(),
        [
            w("memory.limit_in_bytes", "8388608"),
            w("memory.memsw.limit_in_bytes", "16777216")
        ]
    );
    // Raising (current limit 8M <= new memsw 64M): memsw first.
    m.apply(&res(r#"{"memory":{"limit":33554432,"swap":67108864}}"#))
        .unwrap();
    assert_eq!(
        mem_writes(),
        [
            w("memory.memsw.limit_in_bytes", "67108864"),
            w("memory.limit_in_bytes", "33554432")
        ]
    );
    // Lowering below the current limit: limit first.
    m.apply(&res(r#"{"memory":{"limit":4194304,"swap":8388608}}"#))
        .unwrap();
    assert_eq!(
        mem_writes(),
        [
            w("memory.limit_in_bytes", "4194304"),
            w("memory.memsw.limit_in_bytes", "8388608")
        ]
    );
    // Unlimited swap always first.
    m.apply(&res(r#"{"memory":{"limit":4194304,"swap":-1}}"#))
        .unwrap();
    assert_eq!(
        mem_writes(),
        [
            w("memory.memsw.limit_in_bytes", "-1"),
            w("memory.limit_in_bytes", "4194304")
        ]
    );
    assert_eq!(get(&mem, "memory.limit_in_bytes"), "4194304");

    let e = m
        .apply(&res(r#"{"memory":{"limit":8388608,"swap":4194304}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::InvalidResource(_)), "{e}");
}

#[test]
fn swap_without_swap_accounting() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/c");
    fs::remove_file(root.join("memory/c/memory.memsw.limit_in_bytes")).unwrap();
    // swap == limit means "no swap": fine without memsw.
    m.apply(&res(r#"{"memory":{"limit":8388608,"swap":8388608}}"#))
        .unwrap();
    assert_eq!(
        get(&root.join("memory/c"), "memory.limit_in_bytes"),
        "8388608"
    );
    let e = m
        .apply(&res(r#"{"memory":{"limit":8388608,"swap":16777216}}"#))
        .unwrap_err();
    assert!(e.to_string().contains("memory.memsw.limit_in_bytes"), "{e}");
}

#[test]
fn check_before_update_refuses_limit_below_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake_manager(tmp.path(), "/c");
    // Fake usage is 1000000 bytes.
    let e = m
        .apply(&res(
            r#"{"memory":{"limit":500000,"checkBeforeUpdate":true}}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("below current usage"), "{e}");
    m.apply(&res(r#"{"memory":{"limit":500000}}"#)).unwrap();
}

#[test]
fn devices_deny_all_first_then_rules_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/c");
    take_writes();
    m.apply(&res(r#"{"devices":[
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "a", "major": 1, "minor": 5, "access": "r"},
        {"allow": true, "type": "c", "major": 136, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": true, "type": "p", "access": "rwm"}
    ]}"#))
        .unwrap();
    let writes: Vec<_> = take_writes()
        .into_iter()
        .filter(|(f, _)| f.starts_with("devices."))
        .map(|(f, v)| format!("{f}: {v}"))
        .collect();
    assert_eq!(
        writes,
        [
            "devices.deny: a",
            "devices.deny: a",
            "devices.allow: c 1:3 rwm",
            // A narrow "a" rule would mean "everything" to v1: split it.
            "devices.allow: c 1:5 r",
            "devices.allow: b 1:5 r",
            "devices.allow: c 136:* rw",
            "devices.deny: c 1:3 w",
        ]
    );
    let e = m
        .apply(&res(
            r#"{"devices":[{"allow":true,"type":"c","access":"rwx"}]}"#,
        ))
        .unwrap_err();
    assert!(matches!(e, CgroupError::InvalidResource(_)), "{e}");
}

#[test]
fn unified_and_unknown_hugepage_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake_manager(tmp.path(), "/c");
    let e = m
        .apply(&res(r#"{"unified":{"memory.high":"1000"}}"#))
        .unwrap_err();
    assert!(e.to_string().contains("cgroup v2"), "{e}");
    let e = m
        .apply(&res(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#))
        .unwrap_err();
    assert!(e.to_string().contains("hugetlb.3MB.limit_in_bytes"), "{e}");
}

#[test]
fn refused_write_names_file_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/c");
    // A directory in place of the file makes the write fail (EISDIR).
    let f = root.join("pids/c/pids.max");
    fs::remove_file(&f).unwrap();
    fs::create_dir(&f).unwrap();
    let e = m.apply(&res(r#"{"pids":{"limit":42}}"#)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("pids/c/pids.max") && msg.contains("\"42\""),
        "{msg}"
    );
}

#[test]
fn add_task_freeze_pids_stats_oom() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/crius/c");
    m.add_task(Pid::from_raw(4242)).unwrap();
    for sub in ["memory", "cpu", "cpuacct", "freezer", "pids"] {
        assert_eq!(get(&root.join(sub).join("crius/c"), "cgroup.procs"), "4242");
    }
    // A nested cgroup made inside the container still counts.
    let nested = root.join("pids/crius/c/inner");
    fs::create_dir(&nested).unwrap();
    put(&nested, "cgroup.procs", "7\n8\n");
    assert_eq!(
        m.pids().unwrap(),
        [Pid::from_raw(7), Pid::from_raw(8), Pid::from_raw(4242)]
    );

    m.freeze().unwrap();
    assert_eq!(
        get(&root.join("freezer/crius/c"), "freezer.state"),
        "FROZEN"
    );
    m.thaw().unwrap();
    assert_eq!(
        get(&root.join("freezer/crius/c"), "freezer.state"),
        "THAWED"
    );

    let s = m.stats().unwrap();
    let cpu = s.cpu.unwrap();
    assert_eq!(
        (cpu.usage_ns, cpu.user_ns, cpu.system_ns),
        (123456789, 100000000, 23456789)
    );
    assert_eq!(
        (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_ns),
        (7, 2, 5000)
    );
    let mem = s.memory.unwrap();
    assert_eq!(mem.usage_bytes, 1_000_000);
    assert_eq!(mem.working_set_bytes, 900_000);
    assert_eq!(mem.limit_bytes, None);
    assert_eq!(
        (mem.rss_bytes, mem.cache_bytes, mem.swap_bytes),
        (500000, 300000, 200000)
    );
    assert_eq!(
        (mem.page_faults, mem.major_page_faults, mem.oom_kills),
        (42, 3, 1)
    );
    let pids = s.pids.unwrap();
    assert_eq!((pids.current, pids.limit), (3, None));
    m.apply(&res(r#"{"memory":{"limit":8388608},"pids":{"limit":9}}"#))
        .unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.memory.unwrap().limit_bytes, Some(8388608));
    assert_eq!(s.pids.unwrap().limit, Some(9));

    let d = root.join("memory/crius/c");
    assert_eq!(
        m.oom_source(),
        OomSource::V1 {
            oom_control: d.join("memory.oom_control"),
            event_control: d.join("cgroup.event_control"),
        }
    );
}

#[test]
fn destroy_removes_leaf_first_and_tolerates_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Plain empty dirs: a real cgroup dir can be rmdir'ed despite its files.
    for sub in ["memory", "pids"] {
        fs::create_dir_all(root.join(sub).join("crius/pod/c/nested/deeper")).unwrap();
    }
    let m = manager_for(CgroupVersion::V1, "/crius/pod/c", root).unwrap();
    m.destroy().unwrap();
    for sub in ["memory", "pids"] {
        assert!(!root.join(sub).join("crius/pod/c").exists());
        assert!(
            root.join(sub).join("crius/pod").is_dir(),
            "parent must stay"
        );
    }
    m.destroy().unwrap();
}

#[test]
fn device_rule_lines() {
    use super::super::device_rules::normalise;
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_str(r#"[{"allow":true,"type":"a","access":"r"},{"allow":true,"type":"u","major":4,"minor":-1}]"#)
            .unwrap();
    let lines: Vec<Vec<String>> = normalise(&rules)
        .unwrap()
        .iter()
        .map(devices::v1_lines)
        .collect();
    assert_eq!(lines, [vec!["c *:* r", "b *:* r"], vec!["c 4:* rwm"]]);
}

/// On the real v1 hierarchies of this host.
pub(crate) mod real {
    use std::io::{BufRead, BufReader, Write};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    use nix::sys::signal::{Signal, kill};

    use super::super::super::{detect, manager};
    use super::*;
    use testutil::{RealGuard, is_root};

    const ROOT: &str = "/sys/fs/cgroup";

    fn skip_reason() -> Option<&'static str> {
        if !is_root() {
            return Some("not root");
        }
        if detect() != CgroupVersion::V1 {
            return Some("host is not cgroup v1");
        }
        if !Path::new(ROOT)
            .join("memory/memory.limit_in_bytes")
            .exists()
        {
            return Some("no v1 memory controller");
        }
        None
    }

    /// Spawns a shell that waits for a line on stdin before touching any
    /// device, so it runs its checks only once it is inside the cgroup.
    pub fn spawn_probe(
        guard: &mut RealGuard,
    ) -> (
        Pid,
        std::process::ChildStdin,
        BufReader<std::process::ChildStdout>,
    ) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "read x; : > /dev/null && echo null-ok; \
                 if head -c1 /dev/zero >/dev/null 2>&1; then echo zero-ok; else echo zero-denied; fi; \
                 i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; exec sleep 1000",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (guard.adopt(child), stdin, stdout)
    }

    pub fn run_probe(
        stdin: &mut std::process::ChildStdin,
        out: &mut BufReader<std::process::ChildStdout>,
    ) -> Vec<String> {
        stdin.write_all(b"go\n").unwrap();
        let mut got = Vec::new();
        loop {
            let mut l = String::new();
            if out.read_line(&mut l).unwrap() == 0 {
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

    #[test]
    fn real_v1_lifecycle() {
        if let Some(r) = skip_reason() {
            eprintln!("skipping real_v1_lifecycle: {r}");
            return;
        }
        let roots: Vec<PathBuf> = V1_SUBSYSTEMS
            .iter()
            .map(|s| Path::new(ROOT).join(s))
            .filter(|p| p.is_dir())
            .collect();
        let mut guard = RealGuard::new(roots.clone());
        let path = format!("/{}/a", guard.name);
        let m = manager(&path, Path::new(ROOT)).unwrap();
        assert_eq!(m.version(), CgroupVersion::V1);
        m.create().unwrap();
        for sub in [
            "memory", "pids", "cpu", "cpuset", "devices", "freezer", "systemd",
        ] {
            if sub == "systemd" && !Path::new(ROOT).join(sub).is_dir() {
                continue;
            }
            assert!(Path::new(ROOT).join(sub).join(&path[1..]).is_dir(), "{sub}");
        }
        let cpuset_parent = Path::new(ROOT).join("cpuset").join(&guard.name);
        assert!(
            !get(&cpuset_parent, "cpuset.cpus").is_empty(),
            "intermediate cpuset seeded"
        );

        // Limits, raised and lowered again: the kernel itself checks the
        // memory/memsw order here.
        let has_memsw = Path::new(ROOT)
            .join("memory/memory.memsw.limit_in_bytes")
            .exists();
        let mem = |l: u64, sw: u64| {
            if has_memsw {
                format!(r#""memory":{{"limit":{l},"swap":{sw}}}"#)
            } else {
                format!(r#""memory":{{"limit":{l}}}"#)
            }
        };
        m.apply(&res(&format!("{{{}}}", mem(8 << 20, 16 << 20))))
            .unwrap();
        m.apply(&res(&format!("{{{}}}", mem(32 << 20, 64 << 20))))
            .unwrap();
        let full = format!(
            r#"{{{},
                "pids": {{"limit": 10}},
                "cpu": {{"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}},
                "devices": [{{"allow": false, "access": "rwm"}},
                            {{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}}]}}"#,
            mem(8 << 20, 16 << 20)
        );
        m.apply(&res(&full)).unwrap();
        let dir = |s: &str| Path::new(ROOT).join(s).join(&path[1..]);
        assert_eq!(
            get(&dir("memory"), "memory.limit_in_bytes"),
            (8u64 << 20).to_string()
        );
        if has_memsw {
            assert_eq!(
                get(&dir("memory"), "memory.memsw.limit_in_bytes"),
                (16u64 << 20).to_string()
            );
        }
        assert_eq!(get(&dir("pids"), "pids.max"), "10");
        assert_eq!(get(&dir("cpu"), "cpu.cfs_quota_us"), "50000");
        assert_eq!(get(&dir("cpu"), "cpu.cfs_period_us"), "100000");
        assert_eq!(get(&dir("cpu"), "cpu.shares"), "512");
        assert_eq!(get(&dir("cpuset"), "cpuset.cpus"), "0");
        assert_eq!(get(&dir("devices"), "devices.list"), "c 1:3 rwm");

        // A value the kernel refuses names file and value.
        let e = m.apply(&res(r#"{"cpu":{"cpus":"999"}}"#)).unwrap_err();
        assert!(
            e.to_string().contains("cpuset.cpus") && e.to_string().contains("999"),
            "{e}"
        );

        let (pid, mut stdin, mut out) = spawn_probe(&mut guard);
        m.add_task(pid).unwrap();
        assert_eq!(
            run_probe(&mut stdin, &mut out),
            ["null-ok", "zero-denied", "done"]
        );

        let p = pid.to_string();
        for sub in ["memory", "pids", "cpu", "freezer"] {
            assert!(
                get(&dir(sub), "cgroup.procs").lines().any(|l| l == p),
                "{sub} cgroup.procs"
            );
            assert!(
                get(&dir(sub), "tasks").lines().any(|l| l == p),
                "{sub} tasks"
            );
        }
        let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        for sub in ["memory", "pids", "freezer", "cpuset", "devices"] {
            assert!(
                own.lines().any(|l| l.ends_with(&format!(":{sub}:{path}"))),
                "{sub} not in /proc/{pid}/cgroup:\n{own}"
            );
        }
        if Path::new(ROOT).join("systemd").is_dir() {
            assert!(
                own.lines()
                    .any(|l| l.ends_with(&format!(":name=systemd:{path}"))),
                "name=systemd not in /proc/{pid}/cgroup:\n{own}"
            );
        }
        assert!(m.pids().unwrap().contains(&pid));

        m.freeze().unwrap();
        assert_eq!(get(&dir("freezer"), "freezer.state"), "FROZEN");
        m.thaw().unwrap();
        assert_eq!(get(&dir("freezer"), "freezer.state"), "THAWED");

        let s = m.stats().unwrap();
        let cpu = s.cpu.unwrap();
        assert!(cpu.usage_ns > 0, "{cpu:?}");
        let mem = s.memory.unwrap();
        assert!(
            mem.usage_bytes > 0 && mem.working_set_bytes <= mem.usage_bytes,
            "{mem:?}"
        );
        assert_eq!(mem.limit_bytes, Some(8 << 20));
        let pids = s.pids.unwrap();
        assert_eq!((pids.current, pids.limit), (1, Some(10)));
        assert!(
            matches!(m.oom_source(), OomSource::V1 { oom_control, .. } if oom_control.exists())
        );

        kill(pid, Signal::SIGKILL).unwrap();
        guard.kill_children();
        m.destroy().unwrap();
        for r in &roots {
            assert!(!r.join(&path[1..]).exists(), "{} left behind", r.display());
        }
        m.destroy().unwrap();
    }

    /// Many creators at once under new nested parents none of them made before: each
    /// container's cgroup takes its process (no ENOSPC from a cpuset ancestor another
    /// creator made and had not filled yet).
    #[test]
    fn real_v1_concurrent_creates_under_a_new_parent() {
        if let Some(r) = skip_reason() {
            eprintln!("skipping real_v1_concurrent_creates_under_a_new_parent: {r}");
            return;
        }
        const CREATORS: usize = 24;
        let roots: Vec<PathBuf> = V1_SUBSYSTEMS
            .iter()
            .map(|s| Path::new(ROOT).join(s))
            .filter(|p| p.is_dir())
            .collect();
        let mut guard = RealGuard::new(roots);
        let pids: Vec<Pid> = (0..CREATORS)
            .map(|_| {
                let child = Command::new("sleep").arg("1000").spawn().unwrap();
                guard.adopt(child)
            })
            .collect();
        for round in 0..3 {
            let barrier = std::sync::Barrier::new(CREATORS);
            let failures: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = pids
                    .iter()
                    .enumerate()
                    .map(|(i, pid)| {
                        let path = format!("/{}/r{round}/pod/c{i}", guard.name);
                        let barrier = &barrier;
                        s.spawn(move || {
                            let m = manager(&path, Path::new(ROOT)).unwrap();
                            barrier.wait();
                            m.create()
                                .and_then(|()| m.add_task(*pid))
                                .err()
                                .map(|e| format!("{path}: {e}"))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert!(failures.is_empty(), "round {round}: {failures:#?}");
        }
    }

    /// A test failing half-way (cgroup created, child inside, frozen) must
    /// still leave nothing behind.
    #[test]
    fn real_guard_cleans_up_after_panic() {
        if let Some(r) = skip_reason() {
            eprintln!("skipping real_guard_cleans_up_after_panic: {r}");
            return;
        }
        let roots: Vec<PathBuf> = V1_SUBSYSTEMS
            .iter()
            .map(|s| Path::new(ROOT).join(s))
            .filter(|p| p.is_dir())
            .collect();
        let name = std::sync::Mutex::new(String::new());
        let r = std::panic::catch_unwind(|| {
            let mut guard = RealGuard::new(roots.clone());
            *name.lock().unwrap() = guard.name.clone();
            let m = manager(&format!("/{}/a/b", guard.name), Path::new(ROOT)).unwrap();
            m.create().unwrap();
            let (pid, _stdin, _out) = spawn_probe(&mut guard);
            m.add_task(pid).unwrap();
            m.freeze().unwrap();
            panic!("simulated test failure");
        });
        assert!(r.is_err());
        let name = name.into_inner().unwrap();
        assert!(name.starts_with("crius-test-"));
        for r in &roots {
            assert!(!r.join(&name).exists(), "{} left in {}", name, r.display());
        }
    }
}
