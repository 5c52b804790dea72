//! Pod benchmark: latency of the pod and container lifecycle RPCs, then many pods started at
//! once, with the daemon's peak RSS and the RSS and PSS of the per-container monitors.
//!
//! ```text
//! cargo build --release --bin crius --bin crius-monitor
//! cargo run --release -p crius-e2e --bin pod-bench -- [--runs N] [--concurrent N] [--json]
//! cargo run --release -p crius-e2e --bin pod-bench -- --socket /run/containerd/containerd.sock \
//!     --image registry.local/busybox:1 [--daemon-pid PID]
//! ```
//!
//! Without `--socket` it starts its own crius (`--bin`, else `$CRIUS_BIN`, else
//! `target/release/crius` when it exists, else `target/debug/crius`) on a test CNI network, with
//! the busybox test image on a loopback registry. With `--socket` it drives that runtime, pulls
//! `--image`, and uses whatever network the runtime has. Every pod it creates carries the label
//! `crius-e2e-bench-run=<id>`; those pods are stopped and removed at the end, on error and on
//! Ctrl-C. `--userns` gives every pod its own user namespace (mode POD, 65536 ids from 2^20),
//! as the kubelet does for `hostUsers: false`.
//!
//! `--phases` has its own daemon log each lifecycle RPC's phases (docs/performance.md) and
//! prints, at the end, the median of every phase per RPC (`crius_e2e::bench::phases`).
//!
//! `--subscribers N` keeps N `GetContainerEvents` streams open and read throughout, so the
//! lifecycle numbers include building and sending the events (compare with `--subscribers 0`).
//!
//! `suite`, `serve-images` and `cleanup-all` are what `hack/bench.sh` runs against crius and
//! containerd side by side (`crius_e2e::bench`).
//!
//! `--metrics N` measures instead what a `ListPodSandboxMetrics` scrape costs with N pods (one
//! container each) running: the time of a call that collects (the first after the daemon's
//! one-second cache has expired) and of a call the cache answers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_cri_api::v1::{
    ContainerConfig, IdMapping, ListPodSandboxRequest, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxFilter, UserNamespace,
};
use crius_e2e::Crius;
use crius_e2e::bench::stats::{Samples, percentile};
use crius_e2e::bench::{serve, suite};
use crius_e2e::cri::Images;
use crius_e2e::images;
use crius_e2e::pods::env::{monitor_cgroup, remove_cgroup_tree};
use crius_e2e::pods::procs::{self, ProcInfo, RssSampler};
use crius_e2e::pods::{
    Leaks, PodFlow, TestNetwork, cleanup_pods, pod_config, shell_container, with_namespaces,
};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::workspace_root;
use serde_json::{Value, json};
use tempfile::TempDir;

const RUN_LABEL: &str = "crius-e2e-bench-run";
/// The container: exits promptly on SIGTERM, so StopContainer measures the runtime, not a
/// grace period.
const CONTAINER_SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";
const STOP_TIMEOUT_SECS: i64 = 10;
const RSS_EVERY: Duration = Duration::from_millis(10);

struct Options {
    socket: Option<PathBuf>,
    image: Option<String>,
    runs: usize,
    concurrent: usize,
    json: bool,
    bin: Option<PathBuf>,
    daemon_pid: Option<u32>,
    userns: bool,
    metrics: usize,
    subscribers: usize,
    /// Own daemon only: log the RPCs' phases and print their medians at the end.
    phases: bool,
}

const USAGE: &str = "usage: pod-bench [--runs N] [--concurrent N] [--json] [--userns] [--metrics N] [--subscribers N] [--phases] [--bin PATH-TO-CRIUS]
       pod-bench --socket PATH --image REF [--daemon-pid PID] [--runs N] [--concurrent N] [--json] [--userns]
       pod-bench suite --socket PATH --image REF ... (pod-bench suite --help)
       pod-bench serve-images --out FILE --pause-bin PATH
       pod-bench cleanup-all --socket PATH";

fn parse_args() -> Result<Options> {
    let mut options = Options {
        socket: None,
        image: None,
        runs: 50,
        concurrent: 50,
        json: false,
        bin: None,
        daemon_pid: None,
        userns: false,
        metrics: 0,
        subscribers: 0,
        phases: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--socket" => options.socket = Some(PathBuf::from(value("a path")?)),
            "--image" => options.image = Some(value("an image reference")?),
            "--metrics" => options.metrics = value("a number")?.parse().context("--metrics")?,
            "--subscribers" => {
                options.subscribers = value("a number")?.parse().context("--subscribers")?
            }
            "--runs" => options.runs = value("a number")?.parse().context("--runs")?,
            "--concurrent" => {
                options.concurrent = value("a number")?.parse().context("--concurrent")?
            }
            "--bin" => options.bin = Some(PathBuf::from(value("a path")?)),
            "--daemon-pid" => {
                options.daemon_pid = Some(value("a pid")?.parse().context("--daemon-pid")?)
            }
            "--json" => options.json = true,
            "--userns" => options.userns = true,
            "--phases" => options.phases = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if options.socket.is_some() != options.image.is_some() {
        bail!("--socket and --image go together\n{USAGE}");
    }
    if options.socket.is_some() && options.bin.is_some() {
        bail!("--bin is for the bench's own daemon, not with --socket");
    }
    if options.phases && options.socket.is_some() {
        bail!("--phases reads the bench's own daemon's log, not with --socket");
    }
    Ok(options)
}

fn crius_bin(options: &Options) -> Result<PathBuf> {
    let bin = options
        .bin
        .clone()
        .or_else(|| std::env::var_os("CRIUS_BIN").map(PathBuf::from))
        .unwrap_or_else(|| {
            let release = workspace_root().join("target/release/crius");
            if release.exists() {
                release
            } else {
                workspace_root().join("target/debug/crius")
            }
        });
    if !bin.exists() {
        bail!(
            "{} does not exist: cargo build --release --bin crius",
            bin.display()
        );
    }
    Ok(bin)
}

/// The bench's own daemon and what it needs; dropped in field order (daemon first).
struct OwnDaemon {
    crius: Crius,
    network: TestNetwork,
    _registry: TestRegistry,
    /// Its pods' cgroup parent, removed at the end with its monitors' cgroup.
    cgroup_parent: String,
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.cgroup_parent);
        remove_cgroup_tree(&monitor_cgroup(&self.cgroup_parent));
    }
}

/// What the bench drives.
struct Target {
    socket: PathBuf,
    image: String,
    daemon_pid: Option<u32>,
    /// Only processes with this executable name count as monitors (own daemon: crius-monitor).
    monitor_exe: Option<String>,
    own: Option<OwnDaemon>,
    log_dir: TempDir,
    run_id: String,
    userns: bool,
    /// Own daemon with `--metrics`: its Prometheus port, for the heap allocation counter.
    metrics_port: Option<u16>,
}

async fn setup(options: &Options) -> Result<Target> {
    let log_dir = tempfile::Builder::new()
        .prefix("crius-pod-bench-logs-")
        .tempdir()?;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        crius_e2e::pods::requests::unique_uid()
    );
    if let (Some(socket), Some(image)) = (&options.socket, &options.image) {
        let daemon_pid = options
            .daemon_pid
            .or_else(|| procs::unix_socket_owner(socket));
        let target = Target {
            socket: socket.clone(),
            image: image.clone(),
            daemon_pid,
            monitor_exe: None,
            own: None,
            log_dir,
            run_id,
            userns: options.userns,
            metrics_port: None,
        };
        return Ok(target);
    }
    let bin = crius_bin(options)?;
    eprintln!("starting a registry with the busybox test image...");
    let registry = TestRegistry::start(RegistryMode::Plain).await?;
    let pushed = images::push_single(&registry, "bench/busybox", "v1").await?;
    let network = TestNetwork::new()?;
    eprintln!(
        "starting {} on {} ({})",
        bin.display(),
        network.bridge(),
        network.subnet()
    );
    let cgroup_parent = format!("/crius-bench-{}", crius_e2e::pods::requests::unique_uid());
    let metrics_port = match options.metrics {
        0 => None,
        _ => Some(crius_e2e::util::free_port()?),
    };
    let mut builder = Crius::builder();
    if let Some(port) = metrics_port {
        builder = builder
            .config_value("metrics.enable", true)
            .config_value("metrics.port", i64::from(port));
    }
    if options.phases {
        builder = builder.env("RUST_LOG", "info,h2=warn,hyper=warn,crius::phases=debug");
    }
    let crius = builder
        .bin(&bin)
        .log_level("info")
        .insecure(&registry.host())
        .network(&network)
        .config_value("runtime.cgroup_parent", cgroup_parent.as_str())
        .config_value(
            "runtime.monitor_cgroup",
            monitor_cgroup(&cgroup_parent).as_str(),
        )
        .start()
        .await?;
    Ok(Target {
        socket: crius.socket().to_path_buf(),
        image: pushed.reference,
        daemon_pid: crius.pid(),
        monitor_exe: Some("crius-monitor".to_string()),
        own: Some(OwnDaemon {
            crius,
            network,
            _registry: registry,
            cgroup_parent,
        }),
        log_dir,
        run_id,
        userns: options.userns,
        metrics_port,
    })
}

impl Target {
    fn pod(&self, name: &str) -> Result<PodSandboxConfig> {
        let dir = self.log_dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let mut config = pod_config(&format!("bench-{name}"), &dir);
        config
            .labels
            .insert(RUN_LABEL.to_string(), self.run_id.clone());
        if self.userns {
            let map = vec![IdMapping {
                host_id: 1 << 20,
                container_id: 0,
                length: 65536,
            }];
            let options = NamespaceOption {
                userns_options: Some(UserNamespace {
                    mode: NamespaceMode::Pod as i32,
                    uids: map.clone(),
                    gids: map,
                }),
                ..NamespaceOption::default()
            };
            config = with_namespaces(config, options);
        }
        Ok(config)
    }

    fn container(&self) -> ContainerConfig {
        shell_container("sleeper", &self.image, CONTAINER_SCRIPT)
    }

    /// The ids of the pods this run created that the runtime still lists.
    async fn our_pods(&self, flow: &mut PodFlow) -> Result<Vec<String>> {
        let filter = PodSandboxFilter {
            label_selector: HashMap::from([(RUN_LABEL.to_string(), self.run_id.clone())]),
            ..PodSandboxFilter::default()
        };
        let pods = flow
            .client
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await?
            .into_inner()
            .items;
        Ok(pods.into_iter().map(|p| p.id).collect())
    }

    /// Stops and removes every pod of this run.
    async fn cleanup(&self) -> Result<()> {
        let mut flow = PodFlow::connect(&self.socket).await?;
        let pods = self.our_pods(&mut flow).await?;
        if !pods.is_empty() {
            eprintln!("removing {} pod(s) of this run", pods.len());
        }
        cleanup_pods(&mut flow.client, &pods).await
    }
}

struct Sequential {
    run_pod: Samples,
    create_start: Samples,
    teardown: Samples,
}

async fn sequential(target: &Target, runs: usize) -> Result<Sequential> {
    let mut flow = PodFlow::connect(&target.socket).await?;
    let container = target.container();
    let mut result = Sequential {
        run_pod: Samples::default(),
        create_start: Samples::default(),
        teardown: Samples::default(),
    };
    for i in 0..runs {
        let pod = target.pod(&format!("seq-{i}"))?;
        let started = Instant::now();
        let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
        result.run_pod.push(started);
        let started = Instant::now();
        let id = flow
            .create_and_start(&pod_id, &container, &pod)
            .await
            .context("CreateContainer + StartContainer")?;
        result.create_start.push(started);
        let started = Instant::now();
        flow.stop_container(&id, STOP_TIMEOUT_SECS)
            .await
            .context("StopContainer")?;
        flow.remove_container(&id)
            .await
            .context("RemoveContainer")?;
        flow.stop_pod(&pod_id).await.context("StopPodSandbox")?;
        flow.remove_pod(&pod_id).await.context("RemovePodSandbox")?;
        result.teardown.push(started);
    }
    Ok(result)
}

struct Concurrent {
    pods: usize,
    start_wall: f64,
    teardown_wall: f64,
    daemon_rss_before_kib: Option<u64>,
    daemon_rss_peak_kib: Option<u64>,
    daemon_rss_after_kib: Option<u64>,
    monitors: Vec<ProcInfo>,
}

async fn concurrent(target: &Target, n: usize) -> Result<Concurrent> {
    let flow = PodFlow::connect(&target.socket).await?;
    let container = target.container();
    let daemon_rss_before_kib = target.daemon_pid.and_then(procs::rss_kib);
    let sampler = target
        .daemon_pid
        .map(|pid| RssSampler::start(pid, RSS_EVERY));

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let pod = target.pod(&format!("conc-{i}"))?;
        let (mut flow, container) = (flow.clone(), container.clone());
        tasks.spawn(async move {
            let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
            let id = flow
                .create_and_start(&pod_id, &container, &pod)
                .await
                .context("CreateContainer + StartContainer")?;
            anyhow::Ok((pod_id, id))
        });
    }
    let mut started_pods = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("pod task panicked")? {
            Ok(ids) => started_pods.push(ids),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let start_wall = started.elapsed().as_secs_f64();
    if !errors.is_empty() {
        bail!(
            "{} of {n} pods failed to start; first: {}",
            errors.len(),
            errors[0]
        );
    }

    let needles: Vec<String> = started_pods
        .iter()
        .flat_map(|(pod, ctr)| [pod.clone(), ctr.clone()])
        .collect();
    let exclude: Vec<u32> = target.daemon_pid.into_iter().collect();
    let monitors = procs::find_processes(&needles, target.monitor_exe.as_deref(), &exclude);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (pod_id, id) in started_pods {
        let mut flow = flow.clone();
        tasks.spawn(async move {
            flow.stop_container(&id, STOP_TIMEOUT_SECS).await?;
            flow.remove_container(&id).await?;
            flow.stop_pod(&pod_id).await?;
            flow.remove_pod(&pod_id).await?;
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .context("teardown task panicked")?
            .context("teardown")?;
    }
    let teardown_wall = started.elapsed().as_secs_f64();
    Ok(Concurrent {
        pods: n,
        start_wall,
        teardown_wall,
        daemon_rss_before_kib,
        daemon_rss_peak_kib: sampler.map(RssSampler::finish),
        daemon_rss_after_kib: target.daemon_pid.and_then(procs::rss_kib),
        monitors,
    })
}

/// Per executable name: count, mean and max RSS, and mean PSS (of those whose PSS could be
/// read), in KiB.
fn monitor_groups(monitors: &[ProcInfo]) -> BTreeMap<String, (usize, u64, u64, Option<u64>)> {
    let mut groups: BTreeMap<String, Vec<&ProcInfo>> = BTreeMap::new();
    for m in monitors {
        groups.entry(m.exe_name.clone()).or_default().push(m);
    }
    groups
        .into_iter()
        .map(|(name, procs)| {
            let count = procs.len();
            let mean = procs.iter().map(|p| p.rss_kib).sum::<u64>() / count.max(1) as u64;
            let max = procs.iter().map(|p| p.rss_kib).max().unwrap_or(0);
            let pss: Vec<u64> = procs.iter().filter_map(|p| p.pss_kib).collect();
            let mean_pss = (!pss.is_empty()).then(|| pss.iter().sum::<u64>() / pss.len() as u64);
            (name, (count, mean, max, mean_pss))
        })
        .collect()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_string(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn table(
    target: &Target,
    runs: usize,
    seq: &Sequential,
    conc: &Concurrent,
    leaks: &Option<String>,
) -> String {
    let mut out = format!(
        "pod-bench: {runs} sequential runs, {} concurrent pods, image {}, socket {}\n",
        conc.pods,
        target.image,
        target.socket.display()
    );
    out += &format!(
        "{:<44} {:>10} {:>10} {:>10}\n",
        "step", "p50 ms", "p99 ms", "max ms"
    );
    for (name, s) in [
        ("RunPodSandbox", &seq.run_pod),
        ("CreateContainer + StartContainer", &seq.create_start),
        (
            "Stop/RemoveContainer + Stop/RemovePodSandbox",
            &seq.teardown,
        ),
    ] {
        out += &format!(
            "{name:<44} {:>10.1} {:>10.1} {:>10.1}\n",
            s.percentile_ms(50.0),
            s.percentile_ms(99.0),
            s.percentile_ms(100.0)
        );
    }
    out += &format!(
        "{} pods + containers started at once: {:.2} s wall; torn down in {:.2} s\n",
        conc.pods, conc.start_wall, conc.teardown_wall
    );
    out += &format!(
        "daemon RSS (pid {}): before {}, peak {}, after teardown {}\n",
        target
            .daemon_pid
            .map_or_else(|| "?".to_string(), |p| p.to_string()),
        mib(conc.daemon_rss_before_kib),
        mib(conc.daemon_rss_peak_kib),
        mib(conc.daemon_rss_after_kib)
    );
    let groups = monitor_groups(&conc.monitors);
    if groups.is_empty() {
        out += "monitors: none found\n";
    }
    for (name, (count, mean, max, pss)) in groups {
        let pss = pss.map_or_else(|| "?".to_string(), |p| p.to_string());
        out += &format!(
            "monitors: {count} x {name}, RSS mean {mean} KiB, max {max} KiB; PSS mean {pss} KiB\n"
        );
    }
    if let Some(leaks) = leaks {
        out += &format!("LEAKS after the run:\n{leaks}");
    }
    out
}

fn to_json(
    target: &Target,
    runs: usize,
    seq: &Sequential,
    conc: &Concurrent,
    leaks: &Option<String>,
) -> Value {
    let monitors: Vec<Value> = monitor_groups(&conc.monitors)
        .into_iter()
        .map(|(exe, (count, mean, max, pss))| json!({"exe": exe, "count": count, "mean_rss_kib": mean, "max_rss_kib": max, "mean_pss_kib": pss}))
        .collect();
    json!({
        "socket": target.socket,
        "image": target.image,
        "runs": runs,
        "sequential": {
            "run_pod_sandbox": seq.run_pod.json(),
            "create_start_container": seq.create_start.json(),
            "teardown": seq.teardown.json(),
        },
        "concurrent": {
            "pods": conc.pods,
            "start_wall_s": conc.start_wall,
            "teardown_wall_s": conc.teardown_wall,
        },
        "daemon_rss_kib": {
            "pid": target.daemon_pid,
            "before": conc.daemon_rss_before_kib,
            "peak": conc.daemon_rss_peak_kib,
            "after": conc.daemon_rss_after_kib,
        },
        "monitors": monitors,
        "leaks": leaks,
    })
}

/// `--metrics N`: the cost of `ListPodSandboxMetrics` with N pods running.
async fn metrics_scrape(target: &Target, n: usize) -> Result<()> {
    use crius_cri_api::v1::ListPodSandboxMetricsRequest;
    let flow = PodFlow::connect(&target.socket).await?;
    let container = target.container();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let pod = target.pod(&format!("metrics-{i}"))?;
        let (mut flow, container) = (flow.clone(), container.clone());
        tasks.spawn(async move {
            let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
            flow.create_and_start(&pod_id, &container, &pod)
                .await
                .context("CreateContainer + StartContainer")?;
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("pod task panicked")??;
    }
    let mut client = flow.client.clone();
    let (mut collecting, mut cached) = (Vec::new(), Vec::new());
    let (mut collecting_allocs, mut cached_allocs) = (Vec::new(), Vec::new());
    // What reading the counter itself allocates (one scrape of the endpoint), taken off below.
    let scrape_allocs = match target.metrics_port {
        Some(port) => {
            let mut runs = Vec::new();
            for _ in 0..5 {
                let a = heap_allocations(port).await?;
                runs.push(heap_allocations(port).await? - a);
            }
            Some((port, percentile(&runs, 50.0)))
        }
        None => None,
    };
    let mut count = 0;
    for round in 0..11 {
        // Past the daemon's one-second cache: the first call collects, the next ones are cached.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for i in 0..6 {
            let allocs_before = match scrape_allocs {
                Some((port, _)) => heap_allocations(port).await?,
                None => 0.0,
            };
            let started = Instant::now();
            let answer = client
                .list_pod_sandbox_metrics(ListPodSandboxMetricsRequest {})
                .await?
                .into_inner();
            let secs = started.elapsed().as_secs_f64();
            let allocs = match scrape_allocs {
                Some((port, own)) => Some(heap_allocations(port).await? - allocs_before - own),
                None => None,
            };
            count = answer
                .pod_metrics
                .iter()
                .map(|p| {
                    p.metrics.len()
                        + p.container_metrics
                            .iter()
                            .map(|c| c.metrics.len())
                            .sum::<usize>()
                })
                .sum::<usize>();
            // The very first call also warms the daemon's code paths: left out.
            match (round, i) {
                (0, _) => {}
                (_, 0) => {
                    collecting.push(secs);
                    collecting_allocs.extend(allocs);
                }
                _ => {
                    cached.push(secs);
                    cached_allocs.extend(allocs);
                }
            }
        }
    }
    if !collecting_allocs.is_empty() {
        println!(
            "ListPodSandboxMetrics with {n} pods: collecting p50 {:.0} allocations, cached p50 {:.0} (the daemon's heap counter, less a scrape's own)",
            percentile(&collecting_allocs, 50.0),
            percentile(&cached_allocs, 50.0),
        );
    }
    println!(
        "ListPodSandboxMetrics with {n} pods ({count} metrics): collecting p50 {:.2} ms, max {:.2} ms ({} calls); cached p50 {:.2} ms ({} calls)",
        percentile(&collecting, 50.0) * 1e3,
        percentile(&collecting, 100.0) * 1e3,
        collecting.len(),
        percentile(&cached, 50.0) * 1e3,
        cached.len(),
    );
    Ok(())
}

/// The daemon's `crius_heap_allocations_total`, read from its Prometheus endpoint.
async fn heap_allocations(port: u16) -> Result<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("crius_heap_allocations_total "))
        .context("no crius_heap_allocations_total")?
        .trim()
        .parse()
        .context("crius_heap_allocations_total")
}

async fn bench(target: &Target, options: &Options) -> Result<()> {
    let mut images = Images::connect(&target.socket).await?;
    images
        .pull(&target.image)
        .await
        .with_context(|| format!("pulling {}", target.image))?;
    if options.metrics > 0 {
        return metrics_scrape(target, options.metrics).await;
    }
    let readers = subscribe(target, options.subscribers).await?;
    eprintln!("sequential: {} runs", options.runs);
    let seq = sequential(target, options.runs).await?;
    eprintln!("concurrent: {} pods", options.concurrent);
    let conc = concurrent(target, options.concurrent).await?;
    let leaks = target.own.as_ref().and_then(|own| {
        let leaks = Leaks::collect(&own.crius, Some(&own.network), None);
        (!leaks.is_empty()).then(|| leaks.to_string())
    });
    for reader in &readers {
        reader.abort();
    }
    if !readers.is_empty() {
        eprintln!(
            "{} GetContainerEvents subscribers read throughout",
            readers.len()
        );
    }
    let table = table(target, options.runs, &seq, &conc, &leaks);
    if options.json {
        eprint!("{table}");
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(target, options.runs, &seq, &conc, &leaks))?
        );
    } else {
        print!("{table}");
    }
    Ok(())
}

/// `n` event subscribers, each on its own connection, reading until aborted.
async fn subscribe(target: &Target, n: usize) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut readers = Vec::new();
    for _ in 0..n {
        let mut flow = PodFlow::connect(&target.socket).await?;
        let mut stream = flow
            .client
            .get_container_events(crius_cri_api::v1::GetEventsRequest {})
            .await
            .context("GetContainerEvents")?
            .into_inner();
        readers.push(tokio::spawn(async move {
            while let Ok(Some(_)) = stream.message().await {}
        }));
    }
    Ok(readers)
}

// One thread: each RPC's send and receive run on the thread that times it. With tokio's
// multi-thread scheduler a call hopped to a worker thread (tonic's channel hands requests to a
// task), and on this 2-core machine that worker often waited behind the container just
// started — a third of a PodSandboxStatus sample and most of its tail (perf sched) were the
// client's own. The same for every runtime measured.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // The side-by-side modes of hack/bench.sh (`crius_e2e::bench`).
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("suite") => return suite::run(suite::SuiteOptions::parse(args.skip(1))?).await,
        Some("serve-images") => {
            return serve::serve(&serve::ServeOptions::parse(args.skip(1))?).await;
        }
        Some("cleanup-all") => return cleanup_all_mode(args.skip(1)).await,
        _ => {}
    }
    let options = parse_args()?;
    let target = setup(&options).await?;
    let result = tokio::select! {
        r = bench(&target, &options) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if options.phases
        && let Some(own) = &target.own
    {
        let phases = crius_e2e::bench::phases::PhaseLog::parse(&own.crius.log());
        print!("{}", phases.render());
    }
    // In-flight RPCs were dropped with the bench future; the label finds what they created.
    let cleanup = target.cleanup().await;
    if let Some(own) = &target.own
        && let Ok(mut flow) = PodFlow::connect(own.crius.socket()).await
    {
        // Our own daemon: anything at all left on it is ours.
        let _ = flow.cleanup_all().await;
    }
    result?;
    cleanup.context("removing the bench's pods")
}

/// `pod-bench cleanup-all --socket PATH`: stops and removes every container and pod of a
/// runtime that `hack/bench.sh` started for itself (never a shared one).
async fn cleanup_all_mode(mut args: impl Iterator<Item = String>) -> Result<()> {
    let socket = match (args.next().as_deref(), args.next()) {
        (Some("--socket"), Some(path)) => PathBuf::from(path),
        _ => bail!("usage: pod-bench cleanup-all --socket PATH"),
    };
    PodFlow::connect(&socket).await?.cleanup_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_group_by_executable() {
        let p = |pid, name: &str, rss, pss| ProcInfo {
            pid,
            exe_name: name.to_string(),
            rss_kib: rss,
            pss_kib: pss,
        };
        let groups = monitor_groups(&[
            p(1, "conmon", 100, Some(40)),
            p(2, "conmon", 300, Some(60)),
            p(3, "shim", 50, None),
        ]);
        assert_eq!(groups["conmon"], (2, 200, 300, Some(50)));
        assert_eq!(groups["shim"], (1, 50, 50, None));
    }
}
