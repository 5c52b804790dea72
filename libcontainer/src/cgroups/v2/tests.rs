use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::super::device_rules::{ACC_MKNOD, ACC_READ, ACC_WRITE};
use super::super::testutil::{self, fake_v2, get, lines, put};
use super::super::{CgroupError, CgroupVersion, Manager, OomSource, manager_for};
use super::devices::{generate, interp};
use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

const ALL: &str = "cpu cpuset io memory pids hugetlb";

fn fake_manager(root: &Path, path: &str) -> Box<dyn Manager> {
    fake_v2(root, ALL);
    let m = manager_for(CgroupVersion::V2, path, root).unwrap();
    m.create().unwrap();
    m
}

#[test]
fn create_enables_controllers_top_down() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fake_manager(root, "/crius/pod1/ctr1");
    for d in ["", "crius", "crius/pod1"] {
        let mut enabled = lines(&root.join(d), "cgroup.subtree_control");
        enabled.sort();
        assert_eq!(
            enabled,
            ["+cpu", "+cpuset", "+hugetlb", "+io", "+memory", "+pids"],
            "{d:?}"
        );
    }
    let leaf = root.join("crius/pod1/ctr1");
    assert!(leaf.is_dir());
    // The leaf holds processes: it must not distribute controllers.
    assert_eq!(get(&leaf, "cgroup.subtree_control"), "");
    assert_eq!(
        get(&leaf, "cgroup.controllers"),
        "cpu cpuset io memory pids hugetlb"
    );
}

#[test]
fn apply_writes_expected_values() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/crius/ctr");
    m.apply(&res(r#"{
        "memory": {"limit": 8388608, "reservation": 4194304, "swap": 16777216, "swappiness": 10},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 10},
        "blockIO": {"weight": 500,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 20971520}]
    }"#))
        .unwrap();
    let d = root.join("crius/ctr");
    assert_eq!(get(&d, "memory.max"), "8388608");
    assert_eq!(get(&d, "memory.swap.max"), "8388608");
    assert_eq!(get(&d, "memory.low"), "4194304");
    assert_eq!(get(&d, "cpu.weight"), "39");
    assert_eq!(get(&d, "cpu.max"), "50000 100000");
    assert_eq!(get(&d, "cpuset.cpus"), "0-1");
    assert_eq!(get(&d, "cpuset.mems"), "0");
    assert_eq!(get(&d, "pids.max"), "10");
    // No io.bfq.weight in the fake: the weight is rescaled to io.weight, and the per-device
    // weight is left out (it needs BFQ; the kernel refuses it in io.weight without iocost).
    assert_eq!(lines(&d, "io.weight"), ["4950"]);
    assert_eq!(lines(&d, "io.max"), ["8:0 rbps=1048576", "8:0 wiops=max"]);
    assert_eq!(get(&d, "hugetlb.2MB.max"), "20971520");
    assert_eq!(get(&d, "hugetlb.2MB.rsvd.max"), "20971520");
}

#[test]
fn io_uses_bfq_weight_unscaled_when_present() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake_manager(tmp.path(), "/c");
    let d = tmp.path().join("c");
    put(&d, "io.bfq.weight", "");
    m.apply(&res(r#"{"blockIO":{"weight":500}}"#)).unwrap();
    assert_eq!(lines(&d, "io.bfq.weight"), ["500"]);
}

#[test]
fn shares_to_weight_formula() {
    use super::cpu::shares_to_weight;
    assert_eq!(shares_to_weight(0), 0); // unset
    assert_eq!(shares_to_weight(1), 1); // clamped to 2
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(100), 4);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1 << 20), 10_000);
    assert_eq!(super::io::blkio_weight_to_io(10), 1);
    assert_eq!(super::io::blkio_weight_to_io(1000), 10_000);
}

#[test]
fn cpu_max_values() {
    use super::cpu::cpu_max;
    let cur = || Ok("30000 100000\n".to_string());
    assert_eq!(
        cpu_max(Some(50000), Some(100000), cur).unwrap().as_deref(),
        Some("50000 100000")
    );
    assert_eq!(
        cpu_max(Some(-1), Some(100000), cur).unwrap().as_deref(),
        Some("max 100000")
    );
    assert_eq!(
        cpu_max(Some(20000), None, cur).unwrap().as_deref(),
        Some("20000")
    );
    // Period alone keeps the current quota.
    assert_eq!(
        cpu_max(None, Some(50000), cur).unwrap().as_deref(),
        Some("30000 50000")
    );
    assert_eq!(cpu_max(None, None, cur).unwrap(), None);

    let tmp = tempfile::tempdir().unwrap();
    let m = fake_manager(tmp.path(), "/c");
    put(&tmp.path().join("c"), "cpu.max", "30000 100000");
    m.apply(&res(r#"{"cpu":{"period":50000}}"#)).unwrap();
    assert_eq!(get(&tmp.path().join("c"), "cpu.max"), "30000 50000");
}

#[test]
fn swap_conversion() {
    use super::memory::limit_and_swap;
    let s = |l: Option<i64>, sw: Option<i64>| {
        let (a, b) = limit_and_swap(l, sw).unwrap();
        (a.unwrap_or_default(), b.unwrap_or_default())
    };
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(s(Some(100), Some(300)), p("100", "200"));
    assert_eq!(s(Some(100), Some(100)), p("100", "0"));
    assert_eq!(s(Some(100), Some(-1)), p("100", "max"));
    assert_eq!(s(Some(100), None), p("100", ""));
    assert_eq!(s(Some(-1), None), p("max", "max"));
    assert_eq!(s(Some(0), Some(0)), p("", ""));
    assert_eq!(s(None, Some(-1)), p("", "max"));
    assert!(matches!(
        limit_and_swap(Some(300), Some(100)),
        Err(CgroupError::InvalidResource(_))
    ));
    assert!(matches!(
        limit_and_swap(None, Some(100)),
        Err(CgroupError::InvalidResource(_))
    ));
    assert!(matches!(
        limit_and_swap(Some(-1), Some(100)),
        Err(CgroupError::InvalidResource(_))
    ));
}

#[test]
fn swap_file_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake_manager(tmp.path(), "/c");
    let d = tmp.path().join("c");
    fs::remove_file(d.join("memory.swap.max")).unwrap();
    m.apply(&res(r#"{"memory":{"limit":100,"swap":100}}"#))
        .unwrap();
    m.apply(&res(r#"{"memory":{"limit":-1}}"#)).unwrap();
    assert_eq!(get(&d, "memory.max"), "max");
    let e = m
        .apply(&res(r#"{"memory":{"limit":100,"swap":300}}"#))
        .unwrap_err();
    assert!(e.to_string().contains("memory.swap.max"), "{e}");
}

#[test]
fn unified_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fake_manager(tmp.path(), "/c");
    let d = tmp.path().join("c");
    // Raw keys win over the structured fields.
    m.apply(&res(
        r#"{"memory":{"limit":8388608},"unified":{"memory.max":"max","pids.max":"7"}}"#,
    ))
    .unwrap();
    assert_eq!(get(&d, "memory.max"), "max");
    assert_eq!(get(&d, "pids.max"), "7");

    let e = m
        .apply(&res(r#"{"unified":{"memory.nonexistent":"1"}}"#))
        .unwrap_err();
    assert!(
        matches!(&e, CgroupError::UnifiedKeyMissing { key, .. } if key == "memory.nonexistent")
    );
    assert!(e.to_string().contains("c/memory.nonexistent"), "{e}");
    for bad in ["../cgroup.procs", "a/b", ".."] {
        let e = m
            .apply(&res(&format!(r#"{{"unified":{{"{bad}":"1"}}}}"#)))
            .unwrap_err();
        assert!(matches!(e, CgroupError::InvalidUnifiedKey(_)), "{bad}: {e}");
    }
}

#[test]
fn unavailable_controller_and_unsupported_knobs() {
    let tmp = tempfile::tempdir().unwrap();
    fake_v2(tmp.path(), "cpu memory pids");
    let m = manager_for(CgroupVersion::V2, "/c", tmp.path()).unwrap();
    m.create().unwrap();
    let e = m.apply(&res(r#"{"blockIO":{"weight":100}}"#)).unwrap_err();
    assert!(
        matches!(
            e,
            CgroupError::ControllerUnavailable {
                controller: "io",
                ..
            }
        ),
        "{e}"
    );
    let e = m
        .apply(&res(r#"{"cpu":{"realtimeRuntime":950000}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Unsupported(_)), "{e}");
    m.apply(&res(
        r#"{"memory":{"limit":1000,"kernel":5,"swappiness":3}}"#,
    ))
    .unwrap();
}

#[test]
fn freeze_pids_stats_oom_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let m = fake_manager(root, "/crius/c");
    let d = root.join("crius/c");
    m.add_task(Pid::from_raw(99)).unwrap();
    assert_eq!(get(&d, "cgroup.procs"), "99");
    assert_eq!(m.pids().unwrap(), [Pid::from_raw(99)]);

    // The fake kernel reports frozen at once.
    put(&d, "cgroup.events", "populated 1\nfrozen 1\n");
    m.freeze().unwrap();
    assert_eq!(get(&d, "cgroup.freeze"), "1");
    m.thaw().unwrap();
    assert_eq!(get(&d, "cgroup.freeze"), "0");

    let s = m.stats().unwrap();
    let cpu = s.cpu.unwrap();
    assert_eq!(
        (cpu.usage_ns, cpu.user_ns, cpu.system_ns),
        (2_000_000, 1_500_000, 500_000)
    );
    assert_eq!(
        (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_ns),
        (4, 1, 7000)
    );
    let mem = s.memory.unwrap();
    assert_eq!(
        (mem.usage_bytes, mem.working_set_bytes, mem.limit_bytes),
        (4_096_000, 4_000_000, None)
    );
    assert_eq!(
        (mem.rss_bytes, mem.cache_bytes, mem.swap_bytes),
        (1_000_000, 2_000_000, 8192)
    );
    assert_eq!(
        (mem.page_faults, mem.major_page_faults, mem.oom_kills),
        (11, 1, 2)
    );
    assert_eq!(s.pids.unwrap().current, 2);
    m.apply(&res(r#"{"memory":{"limit":8388608}}"#)).unwrap();
    assert_eq!(
        m.stats().unwrap().memory.unwrap().limit_bytes,
        Some(8388608)
    );

    assert_eq!(
        m.oom_source(),
        OomSource::V2 {
            memory_events: d.join("memory.events")
        }
    );
    // Devices on a fake tree: generated, not loaded.
    m.apply(&res(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#))
        .unwrap();

    // Destroy on plain empty dirs (fake files would block rmdir).
    let tmp2 = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp2.path().join("crius/c/nested")).unwrap();
    let m2 = manager_for(CgroupVersion::V2, "/crius/c", tmp2.path()).unwrap();
    m2.destroy().unwrap();
    assert!(!tmp2.path().join("crius/c").exists());
    assert!(tmp2.path().join("crius").exists());
    m2.destroy().unwrap();
}

// ---------------------------------------------------------------------
// Device program: decisions checked with the test interpreter.

fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).unwrap()
}

const CHR: u32 = 2;
const BLK: u32 = 1;

fn allowed(prog: &[Insn], dev: u32, access: u8, major: u32, minor: u32) -> bool {
    let access_type = (u32::from(access) << 16) | dev;
    match interp::run(prog, access_type, major, minor) {
        0 => false,
        1 => true,
        r => panic!("program returned {r}"),
    }
}

use super::devices::Insn;

#[test]
fn device_program_typical_container() {
    // containerd's default: deny all, then the usual device nodes.
    let p = generate(&rules(
        r#"[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
            {"allow":true,"type":"c","major":136,"access":"rwm"},
            {"allow":true,"type":"c","major":5,"minor":2,"access":"rw"},
            {"allow":true,"type":"c","access":"m"},
            {"allow":true,"type":"b","access":"m"}]"#,
    ))
    .unwrap();
    let rw = ACC_READ | ACC_WRITE;
    assert!(allowed(&p, CHR, rw, 1, 3));
    assert!(allowed(&p, CHR, ACC_READ, 1, 5));
    assert!(allowed(&p, CHR, rw, 136, 7));
    assert!(allowed(&p, CHR, rw, 5, 2));
    assert!(allowed(&p, CHR, ACC_MKNOD, 5, 2));
    assert!(allowed(&p, BLK, ACC_MKNOD, 8, 0));
    assert!(!allowed(&p, CHR, ACC_READ, 1, 8)); // /dev/random not listed
    assert!(!allowed(&p, BLK, ACC_READ, 8, 0));
    assert!(!allowed(&p, CHR, ACC_READ | ACC_MKNOD, 1, 8)); // m ok, r not
    // Every requested bit must be allowed.
    assert!(allowed(&p, CHR, ACC_MKNOD | rw, 1, 3));
}

#[test]
fn device_program_later_rules_override() {
    // Privileged with one hole punched.
    let p = generate(&rules(
        r#"[{"allow":true,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
    ))
    .unwrap();
    assert!(allowed(&p, CHR, ACC_READ, 1, 3));
    assert!(!allowed(&p, CHR, ACC_WRITE, 1, 3));
    assert!(!allowed(&p, CHR, ACC_READ | ACC_WRITE, 1, 3));
    assert!(allowed(&p, CHR, ACC_READ | ACC_WRITE, 1, 4));
    assert!(allowed(&p, BLK, ACC_READ | ACC_WRITE | ACC_MKNOD, 8, 0));

    // An allow after a deny of the same device wins again.
    let p = generate(&rules(
        r#"[{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"r"}]"#,
    ))
    .unwrap();
    assert!(allowed(&p, CHR, ACC_READ, 1, 3));
    assert!(!allowed(&p, CHR, ACC_WRITE, 1, 3));
}

#[test]
fn device_program_edge_cases() {
    // Empty list: deny everything.
    let p = generate(&[]).unwrap();
    assert!(!allowed(&p, CHR, ACC_READ, 1, 3));
    assert!(!allowed(&p, BLK, ACC_MKNOD, 0, 0));
    // Allow all.
    let p = generate(&rules(r#"[{"allow":true,"type":"a"}]"#)).unwrap();
    assert!(allowed(&p, BLK, ACC_READ | ACC_WRITE | ACC_MKNOD, 259, 1));
    // Typed wildcard and partial access; FIFO rules are ignored.
    let p = generate(&rules(
        r#"[{"allow":true,"type":"b","major":8,"access":"r"},{"allow":true,"type":"p","access":"rwm"}]"#,
    ))
    .unwrap();
    assert!(allowed(&p, BLK, ACC_READ, 8, 17));
    assert!(!allowed(&p, BLK, ACC_WRITE, 8, 17));
    assert!(!allowed(&p, CHR, ACC_READ, 8, 17));
    // Rules behind a full wildcard are never emitted (dead code is
    // rejected by the verifier): programs stay the same size.
    let short = generate(&rules(r#"[{"allow":true,"type":"a"}]"#)).unwrap();
    let long = generate(&rules(
        r#"[{"allow":false,"type":"c","major":1,"minor":3},{"allow":true,"type":"a"}]"#,
    ))
    .unwrap();
    assert_eq!(short.len(), long.len());
    assert!(generate(&rules(r#"[{"allow":true,"type":"c","major":4294967296}]"#)).is_err());
}

#[test]
fn device_program_shape() {
    let p = generate(&rules(
        r#"[{"allow":true,"type":"c","major":1,"minor":3,"access":"r"}]"#,
    ))
    .unwrap();
    assert_eq!(std::mem::size_of::<Insn>(), 8);
    // Prologue loads the three ctx fields; program ends with exit.
    assert_eq!(p[0].code, super::devices::LDX_MEM_W);
    assert_eq!(p.last().unwrap().code, super::devices::JMP_EXIT);
    let _ = ACC_MKNOD;
}

/// On the cgroup2 hierarchy of this host (the hybrid layout's `unified`
/// mount, which has no resource controllers but has freeze and device
/// programs).
mod real {
    use std::path::PathBuf;

    use super::super::super::v1::tests_real_support::{run_probe, spawn_probe};
    use super::*;
    use testutil::{RealGuard, is_root};

    const UNIFIED: &str = "/sys/fs/cgroup/unified";

    /// The kernel verifier must accept every program shape we generate
    /// (it rejects e.g. unreachable instructions). Loading needs no cgroup.
    #[test]
    fn real_verifier_accepts_generated_programs() {
        if !is_root() {
            eprintln!("skipping real_verifier_accepts_generated_programs: not root");
            return;
        }
        for list in [
            "[]",
            r#"[{"allow":true,"type":"a"}]"#,
            r#"[{"allow":false,"access":"rwm"}]"#,
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
            r#"[{"allow":false,"type":"c","major":1,"minor":3},{"allow":true,"type":"a"}]"#,
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rwm"},
                {"allow":true,"type":"c","major":5,"minor":2,"access":"rw"},
                {"allow":true,"type":"c","access":"m"},
                {"allow":true,"type":"b","access":"m"},
                {"allow":true,"type":"b","major":8,"access":"r"}]"#,
        ] {
            let prog = generate(&rules(list)).unwrap();
            if let Err(e) = bpf::load(&prog, Path::new("-")) {
                panic!("{list}: {e}");
            }
        }
    }

    #[test]
    fn real_v2_freeze_devices_destroy() {
        if !is_root() {
            eprintln!("skipping real_v2_freeze_devices_destroy: not root");
            return;
        }
        let unified = Path::new(UNIFIED);
        let is_v2 = |p: &Path| super::super::super::detect_at(p) == CgroupVersion::V2;
        // On a pure v2 host the root itself is the hierarchy.
        let top = if is_v2(unified) {
            unified.to_path_buf()
        } else if is_v2(Path::new("/sys/fs/cgroup")) {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            eprintln!("skipping real_v2_freeze_devices_destroy: no cgroup2 mount");
            return;
        };
        let mut guard = RealGuard::new(vec![top.clone()]);
        // The test's own directory acts as the root so that create() never
        // changes the host root's subtree_control.
        let base = guard.base(&top);
        fs::create_dir(&base).unwrap();
        let m = super::super::super::manager("/a", &base).unwrap();
        assert_eq!(m.version(), CgroupVersion::V2);
        m.create().unwrap();
        let dir = base.join("a");
        assert!(dir.is_dir());

        let (pid, mut stdin, mut out) = spawn_probe(&mut guard);
        m.add_task(pid).unwrap();
        let devs = r#"{"devices":[{"allow":false,"access":"rwm"},
                       {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#;
        m.apply(&res(devs)).unwrap();
        // Update: the new program replaces the old one.
        m.apply(&res(devs)).unwrap();
        assert_eq!(bpf::attached_device_programs(&dir).unwrap().len(), 1);
        assert_eq!(
            run_probe(&mut stdin, &mut out),
            ["null-ok", "zero-denied", "done"]
        );

        let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let rel = dir.strip_prefix(&top).unwrap().display().to_string();
        assert!(own.lines().any(|l| l == format!("0::/{rel}")), "{own}");
        assert_eq!(m.pids().unwrap(), [pid]);

        m.freeze().unwrap();
        assert!(get(&dir, "cgroup.events").lines().any(|l| l == "frozen 1"));
        m.thaw().unwrap();
        assert!(m.stats().unwrap().cpu.unwrap().usage_ns > 0);

        guard.kill_children();
        m.destroy().unwrap();
        assert!(!dir.exists());
    }
}
