//! crius' own Prometheus metrics: what every RPC, image pull, monitor launch and CNI plugin run
//! records (each through a one-line hook at its site), the pods and containers by state (counted
//! by the caller of [`Metrics::render`] at each scrape), OOM kills and the daemon's process
//! metrics. They are always recorded (a few atomic operations each); `[metrics] enable` only
//! decides whether `metrics/http.rs` serves them. A leaf: it imports no other crius module, so
//! every layer can call its hooks (docs/metrics.md).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Every crius metric; one per process ([`metrics`]).
pub struct Metrics {
    registry: Registry,
    rpc_requests: Family<Labels, Counter>,
    rpc_errors: Family<Labels, Counter>,
    rpc_seconds: Histograms,
    pulls: Family<Labels, Counter>,
    pull_failures: Family<Labels, Counter>,
    pull_bytes: Counter,
    pull_seconds: Histogram,
    pods: Family<Labels, Gauge>,
    containers: Family<Labels, Gauge>,
    oom_kills: Counter,
    oom_seen: Mutex<HashSet<String>>,
    monitor_seconds: Histogram,
    cni_seconds: Histograms,
}

/// 1 ms … ~33 s: RPCs, monitor launches and plugin runs.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// 100 ms … ~30 min: image pulls.
fn pull_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            rpc_requests: Family::default(),
            rpc_errors: Family::default(),
            rpc_seconds: Family::new_with_constructor(latency_buckets),
            pulls: Family::default(),
            pull_failures: Family::default(),
            pull_bytes: Counter::default(),
            pull_seconds: pull_buckets(),
            pods: Family::default(),
            containers: Family::default(),
            oom_kills: Counter::default(),
            oom_seen: Mutex::new(HashSet::new()),
            monitor_seconds: latency_buckets(),
            cni_seconds: Family::new_with_constructor(latency_buckets),
        };
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_prefix("crius");
        r.register(
            "rpc_requests",
            "CRI calls served, by RPC and gRPC status code",
            m.rpc_requests.clone(),
        );
        r.register(
            "rpc_errors",
            "CRI calls that failed, by RPC and gRPC status code",
            m.rpc_errors.clone(),
        );
        r.register(
            "rpc_duration_seconds",
            "Time to serve a CRI call, by RPC",
            m.rpc_seconds.clone(),
        );
        r.register(
            "image_pulls",
            "Image pulls finished, by result (success, failure)",
            m.pulls.clone(),
        );
        r.register(
            "image_pull_failures",
            "Image pulls that failed, by reason",
            m.pull_failures.clone(),
        );
        r.register(
            "image_pull_bytes",
            "Size of the images pulled (compressed layers and config)",
            m.pull_bytes.clone(),
        );
        r.register(
            "image_pull_duration_seconds",
            "Time an image pull took, successful or not",
            m.pull_seconds.clone(),
        );
        r.register("pods", "Pod sandboxes by state", m.pods.clone());
        r.register("containers", "Containers by state", m.containers.clone());
        r.register(
            "container_oom_kills",
            "Containers whose exit status says the OOM killer ended them",
            m.oom_kills.clone(),
        );
        r.register(
            "monitor_launch_duration_seconds",
            "Time from starting a container monitor to its sync line (the runtime's create)",
            m.monitor_seconds.clone(),
        );
        r.register(
            "cni_plugin_duration_seconds",
            "Time one CNI plugin run took, by plugin and command",
            m.cni_seconds.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Metrics { registry, ..m }
    }

    /// The text exposition (OpenMetrics) of every metric, with these pod and container counts
    /// by state.
    pub fn render(&self, states: &States) -> String {
        for (state, n) in &states.pods {
            self.pods
                .get_or_create(&vec![("state", (*state).to_owned())])
                .set(*n);
        }
        for (state, n) in &states.containers {
            self.containers
                .get_or_create(&vec![("state", (*state).to_owned())])
                .set(*n);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics: {e}");
        }
        out
    }
}

/// Pods and containers by state (`ready`, `notready`; `created`, `running`, `exited`,
/// `unknown`), as counted at a scrape; every state is listed, zeros included.
#[derive(Debug, Default)]
pub struct States {
    pub pods: Vec<(&'static str, i64)>,
    pub containers: Vec<(&'static str, i64)>,
}

/// The process' metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Records one CRI call (`server/rpc.rs`).
pub fn rpc_done<T>(rpc: &'static str, elapsed: Duration, result: &Result<T, tonic::Status>) {
    let code = result
        .as_ref()
        .map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
    let m = metrics();
    let labels = vec![("rpc", rpc.to_owned()), ("code", format!("{code:?}"))];
    m.rpc_requests.get_or_create(&labels).inc();
    if code != tonic::Code::Ok {
        m.rpc_errors.get_or_create(&labels).inc();
    }
    m.rpc_seconds
        .get_or_create(&vec![("rpc", rpc.to_owned())])
        .observe(elapsed.as_secs_f64());
}

/// Records a finished image pull (`image/pull.rs`): the image's size, or why it failed.
pub fn pull_done(started: Instant, outcome: Result<u64, &'static str>) {
    let m = metrics();
    m.pull_seconds.observe(started.elapsed().as_secs_f64());
    let outcome = match outcome {
        Ok(bytes) => {
            m.pull_bytes.inc_by(bytes);
            "success"
        }
        Err(reason) => {
            m.pull_failures
                .get_or_create(&vec![("reason", reason.to_owned())])
                .inc();
            "failure"
        }
    };
    m.pulls
        .get_or_create(&vec![("result", outcome.to_owned())])
        .inc();
}

/// Counts a container the OOM killer ended, once however often its status is read.
pub fn oom_killed(container_id: &str) {
    let m = metrics();
    let new = m
        .oom_seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(container_id.to_owned());
    if new {
        m.oom_kills.inc();
    }
}

/// Observes the time from its creation to its drop into a histogram.
pub struct Timer<'a> {
    started: Instant,
    histogram: HistogramRef<'a>,
}

enum HistogramRef<'a> {
    Plain(&'a Histogram),
    Cni(&'static str, String),
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        match &self.histogram {
            HistogramRef::Plain(h) => h.observe(seconds),
            HistogramRef::Cni(command, plugin) => metrics()
                .cni_seconds
                .get_or_create(&vec![
                    ("plugin", plugin.clone()),
                    ("command", (*command).to_owned()),
                ])
                .observe(seconds),
        }
    }
}

/// Times one monitor launch (`monitor/launch.rs`) until the returned guard drops.
pub fn monitor_launch_timer() -> Timer<'static> {
    Timer {
        started: Instant::now(),
        histogram: HistogramRef::Plain(&metrics().monitor_seconds),
    }
}

/// Times one CNI plugin run (`network/cni/exec.rs`) until the returned guard drops.
pub fn cni_plugin_timer(plugin: &str, command: &'static str) -> Timer<'static> {
    Timer {
        started: Instant::now(),
        histogram: HistogramRef::Cni(command, plugin.to_owned()),
    }
}

/// The daemon's own `process_*` metrics, read from `/proc/self` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

/// What `/proc/self` tells about the daemon.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    threads: i64,
    start_time_seconds: f64,
    virtual_bytes: i64,
    resident_bytes: i64,
}

/// `/proc/<pid>/stat` → the process' numbers, with the clock tick rate, the page size and the
/// boot time (`btime` of `/proc/stat`).
fn parse_stat(stat: &str, ticks: f64, page: f64, boot_time: f64) -> Option<ProcessStats> {
    // Fields after the command name (which may hold spaces and parentheses); field 3 is first.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |field: usize| -> Option<f64> { f.get(field - 3)?.parse().ok() };
    Some(ProcessStats {
        cpu_seconds: (num(14)? + num(15)?) / ticks,
        threads: num(20)? as i64,
        start_time_seconds: boot_time + num(22)? / ticks,
        virtual_bytes: num(23)? as i64,
        resident_bytes: (num(24)? * page) as i64,
    })
}

fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    parse_stat(&stat, ticks.max(1) as f64, page.max(1) as f64, boot_time)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = process_stats() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let allocations = ConstCounter::new(crate::heap::allocations());
        allocations.encode(encoder.encode_descriptor(
            "crius_heap_allocations",
            "Heap allocations the daemon has made (reallocations included)",
            None,
            allocations.metric_type(),
        )?)?;
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                fds as f64,
            ),
            ("process_threads", "Number of OS threads", p.threads as f64),
            (
                "crius_heap_bytes",
                "Heap bytes the daemon has allocated and not freed",
                crate::heap::in_use() as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                p.start_time_seconds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn rpc_calls_are_counted_with_their_code_and_timed() {
        rpc_done("TestRpcA", Duration::from_millis(3), &Ok::<(), _>(()));
        rpc_done(
            "TestRpcA",
            Duration::from_millis(5),
            &Err::<(), _>(tonic::Status::not_found("x")),
        );
        let text = encode(&metrics().registry);
        assert!(
            text.contains(r#"crius_rpc_requests_total{rpc="TestRpcA",code="Ok"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"crius_rpc_requests_total{rpc="TestRpcA",code="NotFound"} 1"#));
        assert!(text.contains(r#"crius_rpc_errors_total{rpc="TestRpcA",code="NotFound"} 1"#));
        assert!(!text.contains(r#"crius_rpc_errors_total{rpc="TestRpcA",code="Ok"}"#));
        assert!(text.contains(r#"crius_rpc_duration_seconds_count{rpc="TestRpcA"} 2"#));
        assert!(text.contains(r#"crius_rpc_duration_seconds_bucket{le="0.004",rpc="TestRpcA"} 1"#));
        assert!(text.contains("# TYPE crius_rpc_duration_seconds histogram"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn oom_kills_count_each_container_once() {
        let before = metrics().oom_kills.get();
        oom_killed("test-oom-1");
        oom_killed("test-oom-1");
        oom_killed("test-oom-2");
        assert_eq!(metrics().oom_kills.get() - before, 2);
    }

    #[test]
    fn pulls_record_bytes_and_failure_reasons() {
        let started = Instant::now();
        pull_done(started, Ok(1234));
        pull_done(started, Err("not_found"));
        let text = encode(&metrics().registry);
        assert!(
            text.contains(r#"crius_image_pull_failures_total{reason="not_found"}"#),
            "{text}"
        );
        assert!(text.contains(r#"crius_image_pulls_total{result="success"}"#));
        assert!(text.contains("crius_image_pull_bytes_total "));
    }

    /// The value of the series whose line starts with `series`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn timers_observe_on_drop() {
        let count = "crius_monitor_launch_duration_seconds_count ";
        let before = sample(&encode(&metrics().registry), count).unwrap_or(0.0);
        drop(monitor_launch_timer());
        let after = sample(&encode(&metrics().registry), count);
        assert_eq!(after, Some(before + 1.0));
        drop(cni_plugin_timer("test-bridge", "ADD"));
        let text = encode(&metrics().registry);
        assert!(text.contains(
            r#"crius_cni_plugin_duration_seconds_count{plugin="test-bridge",command="ADD"} 1"#
        ));
    }

    #[test]
    fn proc_stat_is_parsed() {
        // A command name with spaces and a parenthesis, as the kernel writes it.
        let stat = "4242 (cri us) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 \
                    7 0 5000 104857600 2560 18446744073709551615";
        let p = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).unwrap();
        assert_eq!(
            p,
            ProcessStats {
                cpu_seconds: 4.0,
                threads: 7,
                start_time_seconds: 1_700_000_050.0,
                virtual_bytes: 104857600,
                resident_bytes: 2560 * 4096,
            }
        );
    }

    #[test]
    fn own_process_metrics_are_exposed() {
        let text = encode(&metrics().registry);
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_threads ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }
}
