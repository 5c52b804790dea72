//! `pod-bench suite`: the side-by-side measurements `hack/bench.sh` takes of one runtime, given
//! by its socket, as one JSON document.
//!
//! ```text
//! pod-bench suite --socket PATH --image REF [--pull REF]... [--steps lifecycle,overhead,density]
//!     [--runs N] [--pod-pid-runs N] [--pods N] [--density N] [--clients N] [--lifecycles N]
//!     [--cgroup-parent PATH] [--helper-exe NAME] [--pause-exe NAME] [--daemon-pid PID]
//!     [--out FILE]
//! ```
//!
//! Every pod carries the label `crius-e2e-bench-run=<id>` and is removed at the end, on error
//! and on Ctrl-C. Pods use pid namespace mode CONTAINER, as the kubelet asks for a pod without
//! `shareProcessNamespace`; `--pod-pid-runs N` adds N RunPodSandbox samples in mode POD.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_cri_api::v1::{
    ContainerConfig, ListPodSandboxRequest, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxFilter,
};
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{density, footprint, lifecycle};
use crate::cri::Images;
use crate::pods::{PodFlow, cleanup_pods, pod_config, procs, shell_container, with_namespaces};

/// The label every pod of a run carries.
pub const RUN_LABEL: &str = "crius-e2e-bench-run";
/// The container: exits promptly on SIGTERM, so StopContainer measures the runtime, not a
/// grace period; says [`READY`] once its trap is set.
pub const CONTAINER_SCRIPT: &str = "trap 'exit 0' TERM; echo ready; sleep 3600 & wait";
/// The container's first log line.
pub const READY: &str = "ready";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_POLL: Duration = Duration::from_millis(5);
/// StopContainer's grace period (never reached: the container exits on SIGTERM).
pub const STOP_TIMEOUT_SECS: i64 = 10;

const USAGE: &str = "usage: pod-bench suite --socket PATH --image REF [--pull REF]...
    [--steps lifecycle,overhead,density] [--runs N] [--pod-pid-runs N] [--pods N] [--density N]
    [--clients N] [--lifecycles N] [--cgroup-parent PATH] [--helper-exe NAME] [--pause-exe NAME]
    [--daemon-pid PID] [--out FILE]";

#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub socket: PathBuf,
    pub image: String,
    /// Further images to pull first (containerd's sandbox image), so no sample waits for one.
    pub pull: Vec<String>,
    pub steps: Vec<String>,
    pub runs: usize,
    pub pod_pid_runs: usize,
    pub pods: usize,
    pub density: usize,
    pub clients: usize,
    pub lifecycles: usize,
    pub cgroup_parent: String,
    /// The per-container helpers' executable name (`crius-monitor`, `containerd-shim-runc-v2`).
    pub helper_exe: Option<String>,
    pub pause_exe: String,
    pub daemon_pid: Option<u32>,
    pub out: Option<PathBuf>,
}

impl SuiteOptions {
    pub fn parse(args: impl Iterator<Item = String>) -> Result<SuiteOptions> {
        let mut o = SuiteOptions {
            socket: PathBuf::new(),
            image: String::new(),
            pull: Vec::new(),
            steps: vec!["lifecycle".into(), "overhead".into(), "density".into()],
            runs: 30,
            pod_pid_runs: 0,
            pods: 20,
            density: 100,
            clients: 8,
            lifecycles: 25,
            cgroup_parent: String::new(),
            helper_exe: None,
            pause_exe: "pause".into(),
            daemon_pid: None,
            out: None,
        };
        let mut args = args;
        while let Some(arg) = args.next() {
            let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
            match arg.as_str() {
                "--socket" => o.socket = PathBuf::from(value("a path")?),
                "--image" => o.image = value("an image reference")?,
                "--pull" => o.pull.push(value("an image reference")?),
                "--steps" => o.steps = value("a list")?.split(',').map(str::to_string).collect(),
                "--runs" => o.runs = value("a number")?.parse().context("--runs")?,
                "--pod-pid-runs" => {
                    o.pod_pid_runs = value("a number")?.parse().context("--pod-pid-runs")?
                }
                "--pods" => o.pods = value("a number")?.parse().context("--pods")?,
                "--density" => o.density = value("a number")?.parse().context("--density")?,
                "--clients" => o.clients = value("a number")?.parse().context("--clients")?,
                "--lifecycles" => {
                    o.lifecycles = value("a number")?.parse().context("--lifecycles")?
                }
                "--cgroup-parent" => o.cgroup_parent = value("a cgroup path")?,
                "--helper-exe" => o.helper_exe = Some(value("a name")?),
                "--pause-exe" => o.pause_exe = value("a name")?,
                "--daemon-pid" => {
                    o.daemon_pid = Some(value("a pid")?.parse().context("--daemon-pid")?)
                }
                "--out" => o.out = Some(PathBuf::from(value("a path")?)),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        if o.socket.as_os_str().is_empty() || o.image.is_empty() {
            bail!("--socket and --image are required\n{USAGE}");
        }
        for step in &o.steps {
            if !["lifecycle", "overhead", "density"].contains(&step.as_str()) {
                bail!("unknown step {step:?}: lifecycle, overhead, density");
            }
        }
        Ok(o)
    }
}

/// The runtime under test and how this run's pods look.
pub struct Target {
    pub options: SuiteOptions,
    pub daemon_pid: Option<u32>,
    pub run_id: String,
    log_dir: TempDir,
}

impl Target {
    fn new(options: SuiteOptions) -> Result<Target> {
        let daemon_pid = options
            .daemon_pid
            .or_else(|| procs::unix_socket_owner(&options.socket));
        Ok(Target {
            options,
            daemon_pid,
            run_id: format!("suite-{}", crate::pods::unique_uid()),
            log_dir: tempfile::Builder::new()
                .prefix("crius-pod-bench-logs-")
                .tempdir()?,
        })
    }

    /// A pod of this run named `name`, its pid namespace in `pid` mode.
    pub fn pod(&self, name: &str, pid: NamespaceMode) -> Result<PodSandboxConfig> {
        let dir = self.log_dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let mut config = pod_config(&format!("bench-{name}"), &dir);
        config
            .labels
            .insert(RUN_LABEL.to_string(), self.run_id.clone());
        if let Some(linux) = config.linux.as_mut() {
            linux.cgroup_parent = self.options.cgroup_parent.clone();
        }
        let namespaces = NamespaceOption {
            pid: pid as i32,
            ..NamespaceOption::default()
        };
        Ok(with_namespaces(config, namespaces))
    }

    pub fn container(&self) -> ContainerConfig {
        shell_container("sleeper", &self.options.image, CONTAINER_SCRIPT)
    }

    /// Stops and removes every pod of this run the runtime still lists.
    pub async fn cleanup(&self) -> Result<()> {
        let mut flow = PodFlow::connect(&self.options.socket).await?;
        let filter = PodSandboxFilter {
            label_selector: HashMap::from([(RUN_LABEL.to_string(), self.run_id.clone())]),
            ..PodSandboxFilter::default()
        };
        let pods: Vec<String> = flow
            .client
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await?
            .into_inner()
            .items
            .into_iter()
            .map(|p| p.id)
            .collect();
        if !pods.is_empty() {
            eprintln!("removing {} pod(s) of this run", pods.len());
        }
        cleanup_pods(&mut flow.client, &pods).await
    }
}

/// Waits until the container of `pod` has logged [`READY`]: its SIGTERM trap is set. Before
/// that, the shell is PID 1 of its pid namespace with no handler, the kernel drops a SIGTERM,
/// and a StopContainer would wait out the grace period, measuring the shell, not the runtime.
/// Reads the CRI log the runtime writes (both runtimes write `<log_directory>/sleeper.log`).
pub async fn wait_ready(pod: &PodSandboxConfig) -> Result<()> {
    let path = Path::new(&pod.log_directory).join("sleeper.log");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(READY)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the container never logged {READY:?} in {}", path.display());
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

async fn steps(target: &Target) -> Result<Value> {
    let o = &target.options;
    let mut images = Images::connect(&o.socket).await?;
    for image in std::iter::once(&o.image).chain(&o.pull) {
        images
            .pull(image)
            .await
            .with_context(|| format!("pulling {image}"))?;
    }
    let mut answer = json!({
        "socket": o.socket,
        "image": o.image,
        "daemon_pid": target.daemon_pid,
    });
    if o.steps.iter().any(|s| s == "lifecycle") {
        eprintln!("lifecycle: {} runs (pid CONTAINER)", o.runs);
        answer["lifecycle"] = lifecycle::run(target, o.runs, NamespaceMode::Container)
            .await?
            .json();
        if o.pod_pid_runs > 0 {
            eprintln!("lifecycle: {} runs (pid POD)", o.pod_pid_runs);
            answer["lifecycle_pid_pod"] =
                lifecycle::run(target, o.pod_pid_runs, NamespaceMode::Pod)
                    .await?
                    .json();
        }
    }
    if o.steps.iter().any(|s| s == "overhead") {
        eprintln!("overhead: {} pods", o.pods);
        answer["overhead"] = footprint::run(target, o.pods).await?;
    }
    if o.steps.iter().any(|s| s == "density") {
        eprintln!("density: {} pods at once", o.density);
        answer["density"] = density::pods_at_once(target, o.density).await?;
        eprintln!(
            "density: {} clients x {} lifecycles",
            o.clients, o.lifecycles
        );
        answer["clients"] = density::clients(target, o.clients, o.lifecycles).await?;
    }
    Ok(answer)
}

/// Runs the suite: the JSON answer to `--out` (or stdout); every pod of the run removed.
pub async fn run(options: SuiteOptions) -> Result<()> {
    let target = Target::new(options)?;
    let result = tokio::select! {
        r = steps(&target) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // In-flight RPCs were dropped with the steps' future; the label finds what they created.
    let cleanup = target.cleanup().await;
    let answer = result?;
    cleanup.context("removing the bench's pods")?;
    let text = serde_json::to_string_pretty(&answer)?;
    match &target.options.out {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SuiteOptions> {
        SuiteOptions::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_parse_and_check() {
        let o = parse(&[
            "--socket",
            "/s",
            "--image",
            "i",
            "--pull",
            "p",
            "--steps",
            "lifecycle",
            "--runs",
            "3",
            "--helper-exe",
            "shim",
        ])
        .unwrap();
        assert_eq!((o.runs, o.pods, o.density), (3, 20, 100));
        assert_eq!(o.pull, ["p"]);
        assert_eq!(o.steps, ["lifecycle"]);
        assert_eq!(o.helper_exe.as_deref(), Some("shim"));
        assert!(parse(&["--image", "i"]).is_err());
        assert!(parse(&["--socket", "/s", "--image", "i", "--steps", "nap"]).is_err());
    }

    #[test]
    fn pods_carry_the_run_label_pid_mode_and_cgroup_parent() {
        let mut o = parse(&["--socket", "/s", "--image", "i", "--cgroup-parent", "/b"]).unwrap();
        o.daemon_pid = Some(1);
        let target = Target::new(o).unwrap();
        let pod = target.pod("x", NamespaceMode::Container).unwrap();
        assert_eq!(pod.labels[RUN_LABEL], target.run_id);
        let linux = pod.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/b");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.pid, NamespaceMode::Container as i32);
    }
}
