//! What the CRI metrics read from one cgroup beyond `container/stats.rs`' readers (CPU, memory
//! and pids come from those): the spec limits (CPU quota, period and shares), the memory limit
//! hits, block I/O per device, and the processes in it. cgroup v1 (a directory per controller)
//! and v2 (one directory); every file is optional, a missing one leaves its value unknown.

use std::path::{Path, PathBuf};

use crate::libcontainer::cgroups::{self, CgroupVersion};

/// One cgroup, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU, memory and pids, as `ContainerStats` reads them.
    pub stats: cgroups::Stats,
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// CFS quota in µs per period; `None` when unlimited.
    pub cpu_quota: Option<u64>,
    pub cpu_period: Option<u64>,
    /// v1 `cpu.shares`, or v2 `cpu.weight` mapped back to shares (as cAdvisor does).
    pub cpu_shares: Option<u64>,
    /// Times the memory limit was hit (v1 `memory.failcnt`, v2 `memory.events` `max`).
    pub memory_failcnt: Option<u64>,
    /// Processes directly in the cgroup (`cgroup.procs`).
    pub processes: Option<u64>,
    /// Their pids, for the open files they hold.
    pub pids: Vec<u32>,
    pub io: Vec<DeviceIo>,
    /// The most memory ever used (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub memory_max_usage: Option<u64>,
    /// Kernel memory (v1 `memory.kmem.usage_in_bytes`, v2 `memory.stat` `kernel`, or its parts
    /// on kernels that do not sum them).
    pub memory_kernel: Option<u64>,
    /// Mapped file pages (v1 `total_mapped_file`, v2 `file_mapped`).
    pub memory_mapped_file: Option<u64>,
    /// Memory + swap limit (v1 `memory.memsw.limit_in_bytes`) or swap limit (v2
    /// `memory.swap.max`), as cAdvisor reports them; 0 = unlimited.
    pub swap_limit: Option<u64>,
}

/// v1 reports "unlimited" as a page-rounded i64::MAX; v2 as `max`.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

fn limit(value: Option<String>) -> Option<u64> {
    let text = value?;
    let text = text.trim();
    if text == "max" {
        return Some(0);
    }
    let v: u64 = text.parse().ok()?;
    Some(if v >= V1_UNLIMITED { 0 } else { v })
}

fn pids(text: Option<String>) -> Vec<u32> {
    text.map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Block I/O of one device (`major:minor`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIo {
    pub device: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

/// The cgroup at `dir` (from the cgroup root, leading `/`) under `root`; `None` when it is gone.
pub fn read(root: &Path, version: CgroupVersion, dir: &str) -> Option<Sample> {
    let rel = dir.trim_start_matches('/');
    let exists = match version {
        CgroupVersion::V1 => ["memory", "cpuacct", "pids"]
            .iter()
            .any(|c| root.join(c).join(rel).is_dir()),
        CgroupVersion::V2 => root.join(rel).is_dir(),
    };
    if !exists {
        return None;
    }
    let stats = cgroups::manager_for(version, dir, root)
        .and_then(|m| m.stats())
        .ok()?;
    let extra = match version {
        CgroupVersion::V1 => read_v1(root, rel),
        CgroupVersion::V2 => read_v2(&root.join(rel)),
    };
    Some(Sample { stats, extra })
}

fn read_v1(root: &Path, rel: &str) -> Extra {
    let dir = |controller: &str| -> PathBuf { root.join(controller).join(rel) };
    let cpu = dir("cpu");
    let memory = dir("memory");
    let blkio = dir("blkio");
    let procs_dir = [dir("pids"), memory.clone(), cpu.clone()]
        .into_iter()
        .find(|d| d.join("cgroup.procs").is_file());
    // -1 is "no quota".
    let quota = read_text(&cpu, "cpu.cfs_quota_us").and_then(|q| q.trim().parse::<i64>().ok());
    let bytes = read_text(&blkio, "blkio.throttle.io_service_bytes_recursive")
        .or_else(|| read_text(&blkio, "blkio.throttle.io_service_bytes"));
    let ops = read_text(&blkio, "blkio.throttle.io_serviced_recursive")
        .or_else(|| read_text(&blkio, "blkio.throttle.io_serviced"));
    let stat = read_text(&memory, "memory.stat").unwrap_or_default();
    let procs = procs_dir
        .as_ref()
        .and_then(|d| read_text(d, "cgroup.procs"));
    Extra {
        cpu_quota: quota.and_then(|q| u64::try_from(q).ok()),
        cpu_period: read_u64(&cpu, "cpu.cfs_period_us"),
        cpu_shares: read_u64(&cpu, "cpu.shares"),
        memory_failcnt: read_u64(&memory, "memory.failcnt"),
        processes: procs_dir.and_then(|d| count_lines(&d, "cgroup.procs")),
        pids: pids(procs),
        io: parse_blkio(bytes.as_deref().unwrap_or(""), ops.as_deref().unwrap_or("")),
        memory_max_usage: read_u64(&memory, "memory.max_usage_in_bytes"),
        memory_kernel: read_u64(&memory, "memory.kmem.usage_in_bytes"),
        memory_mapped_file: flat_keyed(&stat, "total_mapped_file")
            .or_else(|| flat_keyed(&stat, "mapped_file")),
        swap_limit: limit(read_text(&memory, "memory.memsw.limit_in_bytes")),
    }
}

fn read_v2(dir: &Path) -> Extra {
    let (quota, period) = read_text(dir, "cpu.max")
        .map(|text| parse_cpu_max(&text))
        .unwrap_or((None, None));
    let stat = read_text(dir, "memory.stat").unwrap_or_default();
    let kernel = flat_keyed(&stat, "kernel").or_else(|| {
        let parts = [
            "kernel_stack",
            "pagetables",
            "percpu",
            "sock",
            "vmalloc",
            "slab",
        ];
        let found: Vec<u64> = parts.iter().filter_map(|k| flat_keyed(&stat, k)).collect();
        (!found.is_empty()).then(|| found.iter().sum())
    });
    Extra {
        cpu_quota: quota,
        cpu_period: period,
        cpu_shares: read_u64(dir, "cpu.weight").map(weight_to_shares),
        memory_failcnt: read_text(dir, "memory.events").and_then(|t| flat_keyed(&t, "max")),
        processes: count_lines(dir, "cgroup.procs"),
        pids: pids(read_text(dir, "cgroup.procs")),
        io: read_text(dir, "io.stat")
            .map(|t| parse_io_stat(&t))
            .unwrap_or_default(),
        memory_max_usage: read_u64(dir, "memory.peak"),
        memory_kernel: kernel,
        memory_mapped_file: flat_keyed(&stat, "file_mapped"),
        swap_limit: limit(read_text(dir, "memory.swap.max")),
    }
}

/// v2 `cpu.max`: `"<quota|max> <period>"`.
fn parse_cpu_max(text: &str) -> (Option<u64>, Option<u64>) {
    let mut fields = text.split_whitespace();
    let quota = fields.next().and_then(|q| q.parse().ok());
    let period = fields.next().and_then(|p| p.parse().ok());
    (quota, period)
}

/// cgroup v2 weight (1..=10000) to v1 shares (2..=262144): the inverse of the conversion runc
/// applies, as cAdvisor reports it.
fn weight_to_shares(weight: u64) -> u64 {
    2 + weight.saturating_sub(1) * 262142 / 9999
}

/// v1 `blkio.throttle.io_service_bytes` and `io_serviced`: `"<maj:min> <Op> <value>"` lines.
fn parse_blkio(bytes: &str, ops: &str) -> Vec<DeviceIo> {
    let mut devices: Vec<DeviceIo> = Vec::new();
    for (text, is_bytes) in [(bytes, true), (ops, false)] {
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(device), Some(op), Some(value)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            if !device.contains(':') {
                continue;
            }
            let entry = device_entry(&mut devices, device);
            match (op, is_bytes) {
                ("Read", true) => entry.read_bytes = value,
                ("Write", true) => entry.write_bytes = value,
                ("Read", false) => entry.reads = value,
                ("Write", false) => entry.writes = value,
                _ => {}
            }
        }
    }
    devices
}

/// v2 `io.stat`: `"<maj:min> rbytes=… wbytes=… rios=… wios=… …"` lines.
fn parse_io_stat(text: &str) -> Vec<DeviceIo> {
    let mut devices = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(device) = fields.next() else {
            continue;
        };
        let mut io = DeviceIo {
            device: device.to_owned(),
            ..DeviceIo::default()
        };
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.parse().unwrap_or(0);
            match key {
                "rbytes" => io.read_bytes = value,
                "wbytes" => io.write_bytes = value,
                "rios" => io.reads = value,
                "wios" => io.writes = value,
                _ => {}
            }
        }
        devices.push(io);
    }
    devices
}

fn device_entry<'a>(devices: &'a mut Vec<DeviceIo>, device: &str) -> &'a mut DeviceIo {
    let at = match devices.iter().position(|d| d.device == device) {
        Some(i) => i,
        None => {
            devices.push(DeviceIo {
                device: device.to_owned(),
                ..DeviceIo::default()
            });
            devices.len() - 1
        }
    };
    &mut devices[at]
}

/// The value of `key` in a flat keyed file (`"key value"` lines).
fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_text(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read_text(dir, file)?.trim().parse().ok()
}

fn count_lines(dir: &Path, file: &str) -> Option<u64> {
    read_text(dir, file).map(|t| t.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

/// `/dev/<name>` of a block device `major:minor`, from sysfs; the number itself when unknown.
pub fn device_name(device: &str) -> String {
    std::fs::read_to_string(format!("/sys/dev/block/{device}/uevent"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|n| format!("/dev/{n}")))
        })
        .unwrap_or_else(|| device.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    /// A v1 tree as a hybrid host has it: one directory per controller.
    #[test]
    fn v1_fixture_is_read() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let rel = "crius/pod/ctr";
        let cpu = r.join("cpu").join(rel);
        write(&cpu, "cpu.cfs_quota_us", "50000\n");
        write(&cpu, "cpu.cfs_period_us", "100000\n");
        write(&cpu, "cpu.shares", "512\n");
        write(
            &cpu,
            "cpu.stat",
            "nr_periods 7\nnr_throttled 2\nthrottled_time 3000\n",
        );
        let acct = r.join("cpuacct").join(rel);
        write(&acct, "cpuacct.usage", "2500000000\n");
        write(&acct, "cpuacct.usage_user", "2000000000\n");
        write(&acct, "cpuacct.usage_sys", "500000000\n");
        let mem = r.join("memory").join(rel);
        write(&mem, "memory.usage_in_bytes", "104857600\n");
        write(&mem, "memory.limit_in_bytes", "209715200\n");
        write(&mem, "memory.failcnt", "3\n");
        write(
            &mem,
            "memory.stat",
            "cache 10485760\nrss 94371840\ntotal_cache 10485760\ntotal_rss 94371840\n\
             total_inactive_file 4194304\ntotal_pgfault 100\ntotal_pgmajfault 1\n\
             mapped_file 1000\ntotal_mapped_file 2000\n",
        );
        write(&mem, "memory.max_usage_in_bytes", "115343360\n");
        write(&mem, "memory.kmem.usage_in_bytes", "3000000\n");
        write(&mem, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
        write(
            &mem,
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        let pids = r.join("pids").join(rel);
        write(&pids, "pids.current", "5\n");
        write(&pids, "pids.max", "max\n");
        write(&pids, "cgroup.procs", "10\n11\n");
        let blkio = r.join("blkio").join(rel);
        write(
            &blkio,
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
        );
        write(
            &blkio,
            "blkio.throttle.io_serviced_recursive",
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        );

        let s = read(r, CgroupVersion::V1, "/crius/pod/ctr").unwrap();
        let cpu = s.stats.cpu.unwrap();
        assert_eq!(
            (cpu.usage_ns, cpu.user_ns, cpu.system_ns),
            (2_500_000_000, 2_000_000_000, 500_000_000)
        );
        assert_eq!((cpu.nr_periods, cpu.nr_throttled), (7, 2));
        let m = s.stats.memory.unwrap();
        assert_eq!(m.usage_bytes, 104857600);
        assert_eq!(m.working_set_bytes, 104857600 - 4194304);
        assert_eq!(m.limit_bytes, Some(209715200));
        assert_eq!(s.stats.pids.unwrap().current, 5);
        assert_eq!(
            s.extra,
            Extra {
                cpu_quota: Some(50000),
                cpu_period: Some(100000),
                cpu_shares: Some(512),
                memory_failcnt: Some(3),
                processes: Some(2),
                pids: vec![10, 11],
                io: vec![DeviceIo {
                    device: "8:0".into(),
                    read_bytes: 4096,
                    write_bytes: 8192,
                    reads: 1,
                    writes: 2,
                }],
                memory_max_usage: Some(115343360),
                memory_kernel: Some(3000000),
                memory_mapped_file: Some(2000),
                // v1's "unlimited" (a page-rounded i64::MAX) is reported as 0.
                swap_limit: Some(0),
            }
        );
    }

    #[test]
    fn v1_unlimited_quota_is_none() {
        let root = tempfile::tempdir().unwrap();
        let cpu = root.path().join("cpu/c");
        write(&cpu, "cpu.cfs_quota_us", "-1\n");
        assert_eq!(read_v1(root.path(), "c").cpu_quota, None);
    }

    #[test]
    fn v2_fixture_is_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("kubepods/pod/ctr");
        write(root.path(), "cgroup.controllers", "cpu memory pids io\n");
        write(&dir, "cpu.max", "25000 100000\n");
        write(&dir, "cpu.weight", "100\n");
        write(
            &dir,
            "cpu.stat",
            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 500\n",
        );
        write(&dir, "memory.current", "62914560\n");
        write(&dir, "memory.max", "max\n");
        write(
            &dir,
            "memory.stat",
            "anon 57671680\nfile 5242880\ninactive_file 1048576\npgfault 10\npgmajfault 0\n\
             kernel_stack 16384\npagetables 8192\nslab 100000\nsock 0\nfile_mapped 4096\n",
        );
        write(&dir, "memory.peak", "70000000\n");
        write(&dir, "memory.swap.max", "67108864\n");
        write(
            &dir,
            "memory.events",
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        );
        write(&dir, "pids.current", "3\n");
        write(&dir, "pids.max", "max\n");
        write(&dir, "cgroup.procs", "20\n21\n22\n");
        write(
            &dir,
            "io.stat",
            "8:16 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n",
        );

        let s = read(root.path(), CgroupVersion::V2, "/kubepods/pod/ctr").unwrap();
        let cpu = s.stats.cpu.unwrap();
        assert_eq!(cpu.usage_ns, 3_000_000_000);
        let m = s.stats.memory.unwrap();
        assert_eq!(m.usage_bytes, 62914560);
        assert_eq!(m.working_set_bytes, 62914560 - 1048576);
        assert_eq!(m.limit_bytes, None);
        assert_eq!(
            s.extra,
            Extra {
                cpu_quota: Some(25000),
                cpu_period: Some(100000),
                cpu_shares: Some(2 + 99 * 262142 / 9999),
                memory_failcnt: Some(4),
                processes: Some(3),
                pids: vec![20, 21, 22],
                io: vec![DeviceIo {
                    device: "8:16".into(),
                    read_bytes: 1024,
                    write_bytes: 2048,
                    reads: 3,
                    writes: 4,
                }],
                memory_max_usage: Some(70000000),
                // No `kernel` key (kernels before 6.1): its parts summed.
                memory_kernel: Some(16384 + 8192 + 100000),
                memory_mapped_file: Some(4096),
                swap_limit: Some(67108864),
            }
        );
    }

    #[test]
    fn v2_unlimited_cpu_has_only_a_period() {
        assert_eq!(parse_cpu_max("max 100000\n"), (None, Some(100000)));
    }

    #[test]
    fn weight_maps_back_to_shares() {
        // runc maps shares 1024 to weight 39; back, it is about 1024 again.
        assert_eq!(weight_to_shares(39), 998);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10000), 262144);
    }

    #[test]
    fn a_gone_cgroup_reads_as_none() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "cgroup.controllers", "cpu\n");
        assert_eq!(read(root.path(), CgroupVersion::V2, "/gone"), None);
    }
}
