//! The CRI metrics (`ListMetricDescriptors`, `ListPodSandboxMetrics` and its stream twin): the
//! cAdvisor `container_*` families kubelet's `/metrics/cadvisor` serves when
//! `PodAndContainerStatsFromCRI` is on. Kubelet makes a Prometheus descriptor of each
//! [`api::MetricDescriptor`] (name, help, label keys) and a constant metric of each
//! [`api::Metric`] (its label values in the same order), so every metric here is built from its
//! family's label keys: [`BASE_LABELS`] then the family's own.
//!
//! Every pod yields the metrics of its pause cgroup and its network namespace's interfaces
//! (`container="POD"`), and each of its containers the metrics of its cgroup. Values are read at
//! most once per [`INTERVAL`]: one collection serves every caller meanwhile, and callers that
//! arrive during a collection wait for it rather than start their own.
//!
//! The CRI carries integers only, so seconds are whole seconds (as cri-o does).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::cgroup::{self, Sample};
use crate::api::{self, MetricType};
use crate::engine::{Engine, PodError};
use crate::libcontainer::cgroups::{self, CgroupVersion, DEFAULT_CGROUP_ROOT};
use crate::store::now_nanos;

/// Label keys every family starts with, cAdvisor's names: the container's name in its pod
/// (`POD` for the pod itself), its id, its image, the name crius reserved for it
/// (`k8s_…`), and the pod's namespace and name.
pub const BASE_LABELS: [&str; 6] = ["container", "id", "image", "name", "namespace", "pod"];

/// How long one collection serves.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One metric family: what `ListMetricDescriptors` says about it.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    /// Label keys after [`BASE_LABELS`].
    pub labels: &'static [&'static str],
}

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Family {
    Family {
        name,
        help,
        kind: MetricType::Counter,
        labels,
    }
}

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Family {
    Family {
        name,
        help,
        kind: MetricType::Gauge,
        labels,
    }
}

const IFACE: &[&str] = &["interface"];
const DEVICE: &[&str] = &["device"];

pub const CPU_USAGE: Family = counter(
    "container_cpu_usage_seconds_total",
    "Cumulative cpu time consumed in seconds.",
    &["cpu"],
);
pub const CPU_USER: Family = counter(
    "container_cpu_user_seconds_total",
    "Cumulative user cpu time consumed in seconds.",
    &[],
);
pub const CPU_SYSTEM: Family = counter(
    "container_cpu_system_seconds_total",
    "Cumulative system cpu time consumed in seconds.",
    &[],
);
pub const CFS_PERIODS: Family = counter(
    "container_cpu_cfs_periods_total",
    "Number of elapsed enforcement period intervals.",
    &[],
);
pub const CFS_THROTTLED_PERIODS: Family = counter(
    "container_cpu_cfs_throttled_periods_total",
    "Number of throttled period intervals.",
    &[],
);
pub const CFS_THROTTLED_SECONDS: Family = counter(
    "container_cpu_cfs_throttled_seconds_total",
    "Total time duration the container has been throttled.",
    &[],
);
pub const MEM_USAGE: Family = gauge(
    "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed.",
    &[],
);
pub const MEM_WORKING_SET: Family = gauge(
    "container_memory_working_set_bytes",
    "Current working set in bytes.",
    &[],
);
pub const MEM_RSS: Family = gauge("container_memory_rss", "Size of RSS in bytes.", &[]);
pub const MEM_CACHE: Family = gauge(
    "container_memory_cache",
    "Number of bytes of page cache memory.",
    &[],
);
pub const MEM_SWAP: Family = gauge(
    "container_memory_swap",
    "Container swap usage in bytes.",
    &[],
);
pub const MEM_FAILCNT: Family = counter(
    "container_memory_failcnt",
    "Number of memory usage hits limits.",
    &[],
);
pub const MEM_FAILURES: Family = counter(
    "container_memory_failures_total",
    "Cumulative count of memory allocation failures.",
    &["failure_type", "scope"],
);
pub const OOM_EVENTS: Family = counter(
    "container_oom_events_total",
    "Count of out of memory events observed for the container.",
    &[],
);
pub const NET_RX_BYTES: Family = counter(
    "container_network_receive_bytes_total",
    "Cumulative count of bytes received.",
    IFACE,
);
pub const NET_RX_PACKETS: Family = counter(
    "container_network_receive_packets_total",
    "Cumulative count of packets received.",
    IFACE,
);
pub const NET_RX_ERRORS: Family = counter(
    "container_network_receive_errors_total",
    "Cumulative count of errors encountered while receiving.",
    IFACE,
);
pub const NET_RX_DROPPED: Family = counter(
    "container_network_receive_packets_dropped_total",
    "Cumulative count of packets dropped while receiving.",
    IFACE,
);
pub const NET_TX_BYTES: Family = counter(
    "container_network_transmit_bytes_total",
    "Cumulative count of bytes transmitted.",
    IFACE,
);
pub const NET_TX_PACKETS: Family = counter(
    "container_network_transmit_packets_total",
    "Cumulative count of packets transmitted.",
    IFACE,
);
pub const NET_TX_ERRORS: Family = counter(
    "container_network_transmit_errors_total",
    "Cumulative count of errors encountered while transmitting.",
    IFACE,
);
pub const NET_TX_DROPPED: Family = counter(
    "container_network_transmit_packets_dropped_total",
    "Cumulative count of packets dropped while transmitting.",
    IFACE,
);
pub const FS_READ_BYTES: Family = counter(
    "container_fs_reads_bytes_total",
    "Cumulative count of bytes read.",
    DEVICE,
);
pub const FS_WRITE_BYTES: Family = counter(
    "container_fs_writes_bytes_total",
    "Cumulative count of bytes written.",
    DEVICE,
);
pub const FS_READS: Family = counter(
    "container_fs_reads_total",
    "Cumulative count of reads completed.",
    DEVICE,
);
pub const FS_WRITES: Family = counter(
    "container_fs_writes_total",
    "Cumulative count of writes completed.",
    DEVICE,
);
pub const FS_USAGE: Family = gauge(
    "container_fs_usage_bytes",
    "Number of bytes that are consumed by the container's writable layer.",
    DEVICE,
);
pub const PROCESSES: Family = gauge(
    "container_processes",
    "Number of processes running inside the container.",
    &[],
);
pub const THREADS: Family = gauge(
    "container_threads",
    "Number of threads running inside the container.",
    &[],
);
pub const THREADS_MAX: Family = gauge(
    "container_threads_max",
    "Maximum number of threads allowed inside the container, infinity if value is zero.",
    &[],
);
pub const SPEC_MEMORY_LIMIT: Family = gauge(
    "container_spec_memory_limit_bytes",
    "Memory limit for the container (0 = unlimited).",
    &[],
);
pub const SPEC_CPU_QUOTA: Family = gauge(
    "container_spec_cpu_quota",
    "CPU quota of the container.",
    &[],
);
pub const SPEC_CPU_PERIOD: Family = gauge(
    "container_spec_cpu_period",
    "CPU period of the container.",
    &[],
);
pub const SPEC_CPU_SHARES: Family = gauge(
    "container_spec_cpu_shares",
    "CPU share of the container.",
    &[],
);
pub const BLKIO_DEVICE_USAGE: Family = counter(
    "container_blkio_device_usage_total",
    "Blkio device bytes usage.",
    &["device", "major", "minor", "operation"],
);
pub const FILE_DESCRIPTORS: Family = gauge(
    "container_file_descriptors",
    "Number of open file descriptors for the container.",
    &[],
);
pub const SOCKETS: Family = gauge(
    "container_sockets",
    "Number of open sockets for the container.",
    &[],
);
pub const FS_INODES_FREE: Family = gauge(
    "container_fs_inodes_free",
    "Number of available inodes on the filesystem of the container's writable layer.",
    DEVICE,
);
pub const FS_INODES_TOTAL: Family = gauge(
    "container_fs_inodes_total",
    "Number of inodes on the filesystem of the container's writable layer.",
    DEVICE,
);
pub const FS_LIMIT: Family = gauge(
    "container_fs_limit_bytes",
    "Number of bytes that can be consumed by the container on the filesystem of its writable layer.",
    DEVICE,
);
pub const MEM_KERNEL: Family = gauge(
    "container_memory_kernel_usage",
    "Size of kernel memory allocated in bytes.",
    &[],
);
pub const MEM_MAPPED_FILE: Family = gauge(
    "container_memory_mapped_file",
    "Size of memory mapped files in bytes.",
    &[],
);
pub const MEM_MAX_USAGE: Family = gauge(
    "container_memory_max_usage_bytes",
    "Maximum memory usage recorded in bytes.",
    &[],
);
pub const SPEC_SWAP_LIMIT: Family = gauge(
    "container_spec_memory_swap_limit_bytes",
    "Memory swap limit for the container (0 = unlimited).",
    &[],
);
pub const START_TIME: Family = gauge(
    "container_start_time_seconds",
    "Start time of the container since unix epoch in seconds.",
    &[],
);
pub const LAST_SEEN: Family = gauge(
    "container_last_seen",
    "Last time a container was seen by the exporter.",
    &[],
);

/// Every family crius reports.
pub const FAMILIES: &[&Family] = &[
    &CPU_USAGE,
    &CPU_USER,
    &CPU_SYSTEM,
    &CFS_PERIODS,
    &CFS_THROTTLED_PERIODS,
    &CFS_THROTTLED_SECONDS,
    &MEM_USAGE,
    &MEM_WORKING_SET,
    &MEM_RSS,
    &MEM_CACHE,
    &MEM_SWAP,
    &MEM_FAILCNT,
    &MEM_FAILURES,
    &OOM_EVENTS,
    &NET_RX_BYTES,
    &NET_RX_PACKETS,
    &NET_RX_ERRORS,
    &NET_RX_DROPPED,
    &NET_TX_BYTES,
    &NET_TX_PACKETS,
    &NET_TX_ERRORS,
    &NET_TX_DROPPED,
    &FS_READ_BYTES,
    &FS_WRITE_BYTES,
    &FS_READS,
    &FS_WRITES,
    &FS_USAGE,
    &PROCESSES,
    &THREADS,
    &THREADS_MAX,
    &SPEC_MEMORY_LIMIT,
    &SPEC_CPU_QUOTA,
    &SPEC_CPU_PERIOD,
    &SPEC_CPU_SHARES,
    &BLKIO_DEVICE_USAGE,
    &FILE_DESCRIPTORS,
    &SOCKETS,
    &FS_INODES_FREE,
    &FS_INODES_TOTAL,
    &FS_LIMIT,
    &MEM_KERNEL,
    &MEM_MAPPED_FILE,
    &MEM_MAX_USAGE,
    &SPEC_SWAP_LIMIT,
    &START_TIME,
    &LAST_SEEN,
];

/// `ListMetricDescriptors`' answer.
pub fn descriptors() -> Vec<api::MetricDescriptor> {
    FAMILIES
        .iter()
        .map(|f| api::MetricDescriptor {
            name: f.name.to_owned(),
            help: f.help.to_owned(),
            label_keys: BASE_LABELS
                .iter()
                .chain(f.labels)
                .map(|k| (*k).to_owned())
                .collect(),
        })
        .collect()
}

/// The metrics of one cgroup (or the pod's network), its base label values fixed.
struct Builder<'a> {
    base: &'a [String; 6],
    at: i64,
    out: Vec<api::Metric>,
    /// Block device names by `major:minor`, looked up once per collection.
    devices: &'a RefCell<HashMap<String, String>>,
}

impl Builder<'_> {
    fn push(&mut self, family: &Family, extra: &[&str], value: u64) {
        debug_assert_eq!(extra.len(), family.labels.len(), "{}", family.name);
        let label_values = self
            .base
            .iter()
            .cloned()
            .chain(extra.iter().map(|v| (*v).to_owned()))
            .collect();
        self.out.push(api::Metric {
            name: family.name.to_owned(),
            timestamp: self.at,
            metric_type: family.kind as i32,
            label_values,
            value: Some(api::UInt64Value { value }),
        });
    }

    /// Everything a cgroup tells.
    fn cgroup(&mut self, s: &Sample) {
        const NS: u64 = 1_000_000_000;
        if let Some(cpu) = &s.stats.cpu {
            self.push(&CPU_USAGE, &["total"], cpu.usage_ns / NS);
            self.push(&CPU_USER, &[], cpu.user_ns / NS);
            self.push(&CPU_SYSTEM, &[], cpu.system_ns / NS);
            self.push(&CFS_PERIODS, &[], cpu.nr_periods);
            self.push(&CFS_THROTTLED_PERIODS, &[], cpu.nr_throttled);
            self.push(&CFS_THROTTLED_SECONDS, &[], cpu.throttled_ns / NS);
        }
        if let Some(m) = &s.stats.memory {
            self.push(&MEM_USAGE, &[], m.usage_bytes);
            self.push(&MEM_WORKING_SET, &[], m.working_set_bytes);
            self.push(&MEM_RSS, &[], m.rss_bytes);
            self.push(&MEM_CACHE, &[], m.cache_bytes);
            self.push(&MEM_SWAP, &[], m.swap_bytes);
            self.push(&MEM_FAILURES, &["pgfault", "container"], m.page_faults);
            self.push(
                &MEM_FAILURES,
                &["pgmajfault", "container"],
                m.major_page_faults,
            );
            self.push(&OOM_EVENTS, &[], m.oom_kills);
            self.push(&SPEC_MEMORY_LIMIT, &[], m.limit_bytes.unwrap_or(0));
        }
        if let Some(failcnt) = s.extra.memory_failcnt {
            self.push(&MEM_FAILCNT, &[], failcnt);
        }
        for (family, value) in [
            (&MEM_MAX_USAGE, s.extra.memory_max_usage),
            (&MEM_KERNEL, s.extra.memory_kernel),
            (&MEM_MAPPED_FILE, s.extra.memory_mapped_file),
            (&SPEC_SWAP_LIMIT, s.extra.swap_limit),
        ] {
            if let Some(value) = value {
                self.push(family, &[], value);
            }
        }
        let (fds, sockets) = open_files(&s.extra.pids);
        self.push(&FILE_DESCRIPTORS, &[], fds);
        self.push(&SOCKETS, &[], sockets);
        if let Some(p) = &s.stats.pids {
            self.push(&THREADS, &[], p.current);
            self.push(&THREADS_MAX, &[], p.limit.unwrap_or(0));
        }
        if let Some(n) = s.extra.processes {
            self.push(&PROCESSES, &[], n);
        }
        if let Some(q) = s.extra.cpu_quota {
            self.push(&SPEC_CPU_QUOTA, &[], q);
        }
        if let Some(p) = s.extra.cpu_period {
            self.push(&SPEC_CPU_PERIOD, &[], p);
        }
        if let Some(sh) = s.extra.cpu_shares {
            self.push(&SPEC_CPU_SHARES, &[], sh);
        }
        for io in &s.extra.io {
            let device = self
                .devices
                .borrow_mut()
                .entry(io.device.clone())
                .or_insert_with(|| cgroup::device_name(&io.device))
                .clone();
            let (major, minor) = io.device.split_once(':').unwrap_or((&io.device, ""));
            self.push(
                &BLKIO_DEVICE_USAGE,
                &[&device, major, minor, "Read"],
                io.read_bytes,
            );
            self.push(
                &BLKIO_DEVICE_USAGE,
                &[&device, major, minor, "Write"],
                io.write_bytes,
            );
            self.push(&FS_READ_BYTES, &[&device], io.read_bytes);
            self.push(&FS_WRITE_BYTES, &[&device], io.write_bytes);
            self.push(&FS_READS, &[&device], io.reads);
            self.push(&FS_WRITES, &[&device], io.writes);
        }
    }

    /// `/proc/<pid>/net/dev` of the pod's network namespace, loopback left out.
    fn network(&mut self, net_dev: &str) {
        for line in net_dev.lines().skip(2) {
            let Some((name, counters)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name == "lo" {
                continue;
            }
            let n: Vec<u64> = counters
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            if n.len() < 12 {
                continue;
            }
            let iface = [name];
            self.push(&NET_RX_BYTES, &iface, n[0]);
            self.push(&NET_RX_PACKETS, &iface, n[1]);
            self.push(&NET_RX_ERRORS, &iface, n[2]);
            self.push(&NET_RX_DROPPED, &iface, n[3]);
            self.push(&NET_TX_BYTES, &iface, n[8]);
            self.push(&NET_TX_PACKETS, &iface, n[9]);
            self.push(&NET_TX_ERRORS, &iface, n[10]);
            self.push(&NET_TX_DROPPED, &iface, n[11]);
        }
    }

    /// Inodes and size of the filesystem holding the writable layer `upper`.
    fn filesystem(&mut self, upper: &Path, device: &str) {
        let Ok(fs) = nix::sys::statvfs::statvfs(upper) else {
            return;
        };
        self.push(&FS_INODES_FREE, &[device], fs.files_free());
        self.push(&FS_INODES_TOTAL, &[device], fs.files());
        self.push(
            &FS_LIMIT,
            &[device],
            fs.blocks().saturating_mul(fs.fragment_size()),
        );
    }

    fn start_time(&mut self, nanos: i64) {
        if nanos > 0 {
            self.push(&START_TIME, &[], (nanos / 1_000_000_000) as u64);
        }
    }

    fn last_seen(&mut self) {
        self.push(&LAST_SEEN, &[], (self.at / 1_000_000_000).max(0) as u64);
    }
}

/// Open file descriptors and, of them, sockets, of the processes `pids`.
fn open_files(pids: &[u32]) -> (u64, u64) {
    let (mut fds, mut sockets) = (0, 0);
    for pid in pids {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in entries.flatten() {
            fds += 1;
            if std::fs::read_link(entry.path()).is_ok_and(|target| {
                target
                    .as_os_str()
                    .as_encoded_bytes()
                    .starts_with(b"socket:")
            }) {
                sockets += 1;
            }
        }
    }
    (fds, sockets)
}

/// What to read for one pod, gathered from the tables before any file is read.
struct PodTarget {
    id: String,
    base: [String; 6],
    cgroup: Option<String>,
    created_at: i64,
    /// `/proc/<pid>/net/dev` of the pause process, when the pod has its own network namespace.
    net_dev: Option<crate::pod::NetDev>,
    containers: Vec<ContainerTarget>,
}

struct ContainerTarget {
    id: String,
    base: [String; 6],
    cgroup: Option<String>,
    upper: PathBuf,
    started_at: i64,
}

fn targets(engine: &Engine) -> Vec<PodTarget> {
    let mut pods = Vec::new();
    for sandbox in engine.sandboxes() {
        let record = sandbox.record();
        if !crate::sandbox::status::visible(&record) {
            continue;
        }
        let meta = crate::pod::pod_config(&record)
            .ok()
            .and_then(|c| c.metadata)
            .unwrap_or_default();
        let net_dev = crate::pod::NetDev::of(engine, &record);
        let mut containers = Vec::new();
        for c in engine.containers_of(&record.id) {
            let rec = c.record();
            if !crate::container::status::visible(&rec) {
                continue;
            }
            let name = crate::container::status::container_config(&rec)
                .ok()
                .and_then(|c| c.metadata)
                .map(|m| m.name)
                .unwrap_or_default();
            containers.push(ContainerTarget {
                base: [
                    name,
                    rec.id.clone(),
                    rec.image_name.clone(),
                    rec.name.clone(),
                    meta.namespace.clone(),
                    meta.name.clone(),
                ],
                cgroup: crate::oci::cgroup_dir(&record.cgroup_parent, &rec.id).ok(),
                upper: engine.paths.container_dir(&rec.id).join("upper"),
                started_at: rec.started_at,
                id: rec.id,
            });
        }
        pods.push(PodTarget {
            base: [
                "POD".to_owned(),
                record.id.clone(),
                String::new(),
                record.name.clone(),
                meta.namespace,
                meta.name,
            ],
            cgroup: crate::oci::cgroup_dir(&record.cgroup_parent, &record.id).ok(),
            net_dev,
            containers,
            created_at: record.created_at,
            id: record.id,
        });
    }
    pods
}

/// Reads every target (blocking file work).
fn collect(
    pods: Vec<PodTarget>,
    root: &Path,
    version: CgroupVersion,
    containers_dir: &Path,
) -> Vec<api::PodSandboxMetrics> {
    let at = now_nanos();
    let devices = RefCell::new(HashMap::new());
    // Every writable layer is under the containers' directory: one mount table read for all.
    let layers_mount = crate::libcontainer::mounts::mountpoint_of(containers_dir)
        .ok()
        .map(|m| m.display().to_string());
    let read = |dir: &Option<String>| dir.as_deref().and_then(|d| cgroup::read(root, version, d));
    pods.into_iter()
        .map(|pod| {
            let mut b = Builder {
                base: &pod.base,
                at,
                out: Vec::new(),
                devices: &devices,
            };
            if let Some(s) = read(&pod.cgroup) {
                b.cgroup(&s);
            }
            if let Some(text) = pod.net_dev.and_then(|n| n.read()) {
                b.network(&text);
            }
            b.start_time(pod.created_at);
            b.last_seen();
            let metrics = b.out;
            let container_metrics = pod
                .containers
                .iter()
                .filter_map(|c| {
                    // A container without a cgroup (exited, not yet created) has no metrics.
                    let sample = read(&c.cgroup)?;
                    let mut b = Builder {
                        base: &c.base,
                        at,
                        out: Vec::new(),
                        devices: &devices,
                    };
                    b.cgroup(&sample);
                    if let Some(mountpoint) = &layers_mount
                        && c.upper.is_dir()
                    {
                        let (bytes, _) = crate::container::stats::dir_usage(&c.upper);
                        b.push(&FS_USAGE, &[mountpoint], bytes);
                        b.filesystem(&c.upper, mountpoint);
                    }
                    b.start_time(c.started_at);
                    b.last_seen();
                    Some(api::ContainerMetrics {
                        container_id: c.id.clone(),
                        metrics: b.out,
                    })
                })
                .collect();
            api::PodSandboxMetrics {
                pod_sandbox_id: pod.id,
                metrics,
                container_metrics,
            }
        })
        .collect()
}

/// A value computed at most once per interval; callers during a computation wait for it.
#[derive(Debug, Default)]
pub struct Cache<T> {
    slot: tokio::sync::Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Cache<T> {
    pub async fn get_or_refresh<F, Fut, E>(
        &self,
        interval: Duration,
        refresh: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref()
            && at.elapsed() < interval
        {
            return Ok(value.clone());
        }
        let value = Arc::new(refresh().await?);
        *slot = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

static POD_METRICS: OnceLock<Cache<Vec<api::PodSandboxMetrics>>> = OnceLock::new();

/// `ListPodSandboxMetrics`' answer: every visible pod, from the shared collection.
pub async fn pod_metrics(engine: &Engine) -> Result<Arc<Vec<api::PodSandboxMetrics>>, PodError> {
    let cache = POD_METRICS.get_or_init(Cache::default);
    cache
        .get_or_refresh(INTERVAL, || async {
            let pods = targets(engine);
            let root = Path::new(DEFAULT_CGROUP_ROOT);
            let containers_dir = engine.paths.container_dir("");
            Ok(tokio::task::spawn_blocking(move || {
                collect(pods, root, cgroups::detect(), &containers_dir)
            })
            .await?)
        })
        .await
}

#[cfg(test)]
mod tests;
