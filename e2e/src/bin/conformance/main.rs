//! Runs Kubernetes' own `e2e.test` (NodeConformance) against crius as the runtime of a
//! one-node cluster on this machine, offline. See docs/conformance.md.
//!
//! ```text
//! cargo build -p crius -p crius-monitor -p crius-e2e --bin conformance
//! target/debug/conformance --k8s-bin DIR [--etcd PATH] [--bin PATH-TO-CRIUS] [--serial]
//!     [--procs N] [--focus RE] [--skip RE] [--timeout DURATION] [--report-dir DIR]
//!     [--cgroup-driver cgroupfs|systemd] [--keep] [--no-e2e] [-- E2E-ARGS...]
//! ```
//!
//! `--k8s-bin` (or `$K8S_BIN`) holds `kube-apiserver`, `kube-controller-manager`,
//! `kube-scheduler`, `kubelet`, `kubectl`, `e2e.test`, `agnhost` and, for `--procs` above 1,
//! `ginkgo`; `etcd` is taken from there, else from `$PATH`. In order it: starts a loopback
//! registry and pushes the suite's images to it ([`images`]); reserves a CNI test network (no
//! default route, no masquerading) and starts crius on it with a socket, root and cgroup parent
//! of its own, with the cgroup driver `--cgroup-driver` names (cgroupfs by default; systemd on
//! a systemd host with pure cgroup v2, as in hack/vm/conformance.sh: [`node_cgroups`]); generates the PKI ([`certs`]); starts etcd, the API server, the controller
//! manager, the scheduler and a kubelet ([`cluster`]) and waits for the node to be Ready; runs
//! `e2e.test` with the selection of the mode (below) and the arguments after `--`, JUnit into
//! `--report-dir`; then stops everything by PID, removes every pod through the CRI, unmounts
//! what the kubelet left, deletes the cgroups, the node's link and the work directory (logs are
//! copied to the report directory first) and restores the kubelet's sysctls.
//!
//! Modes: by default `[NodeConformance]` without `[Serial]`, `[Disruptive]`, `[Flaky]`,
//! `[Slow]` and DNS specs, on `--procs` ginkgo processes (default 2); with `--serial`, the
//! `[NodeConformance]` `[Serial]` specs (not `[Disruptive]` or `[Flaky]`) on one process.
//! `--focus` and `--skip` replace the mode's regular expressions (to rerun single specs);
//! `--timeout` is ginkgo's suite timeout (default 4h: past it the running specs are
//! interrupted and the report still written).
//! `--keep` leaves the cluster up after the suite (or instead of it, with `--no-e2e`) until
//! Ctrl-C and prints the kubeconfig. Exits with `e2e.test`'s status.

mod certs;
mod cluster;
mod images;
mod node_cgroups;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_e2e::pods::{TestNetwork, cleanup_all};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::free_port;
use crius_e2e::{Crius, cri};

use crate::certs::Client;
use crate::cluster::{Component, Layout, NodeAddress};
use crate::node_cgroups::{CgroupDriver, NodeCgroups};

const USAGE: &str = "usage: conformance --k8s-bin DIR [--etcd PATH] [--bin PATH-TO-CRIUS]
                   [--serial] [--procs N] [--focus RE] [--skip RE] [--timeout DURATION]
                   [--report-dir DIR] [--cgroup-driver cgroupfs|systemd]
                   [--keep] [--no-e2e] [-- E2E-ARGS...]";

const FOCUS: &str = r"\[NodeConformance\]";
const SKIP: &str = r"\[Serial\]|\[Disruptive\]|\[Flaky\]|\[Slow\]|DNS";
const SERIAL_FOCUS: &str = r"\[NodeConformance\].*\[Serial\]|\[Serial\].*\[NodeConformance\]";
const SERIAL_SKIP: &str = r"\[Disruptive\]|\[Flaky\]";
const NODE: &str = "crius-node";

struct Options {
    k8s_bin: PathBuf,
    etcd: Option<PathBuf>,
    bin: Option<PathBuf>,
    serial: bool,
    procs: Option<u32>,
    focus: Option<String>,
    skip: Option<String>,
    timeout: String,
    report_dir: PathBuf,
    cgroup_driver: CgroupDriver,
    keep: bool,
    no_e2e: bool,
    e2e_args: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let mut k8s_bin = std::env::var_os("K8S_BIN").map(PathBuf::from);
    let mut options = Options {
        k8s_bin: PathBuf::new(),
        etcd: None,
        bin: None,
        serial: false,
        procs: None,
        focus: None,
        skip: None,
        timeout: "4h".to_string(),
        report_dir: PathBuf::from("conformance-report"),
        cgroup_driver: CgroupDriver::Cgroupfs,
        keep: false,
        no_e2e: false,
        e2e_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--k8s-bin" => k8s_bin = Some(PathBuf::from(value("a directory")?)),
            "--etcd" => options.etcd = Some(PathBuf::from(value("a path")?)),
            "--bin" => options.bin = Some(PathBuf::from(value("a path")?)),
            "--serial" => options.serial = true,
            "--procs" => {
                options.procs = Some(value("a number")?.parse().context("--procs")?);
            }
            "--focus" => options.focus = Some(value("a regular expression")?),
            "--skip" => options.skip = Some(value("a regular expression")?),
            "--timeout" => options.timeout = value("a duration (e.g. 90m)")?,
            "--report-dir" => options.report_dir = PathBuf::from(value("a directory")?),
            "--cgroup-driver" => {
                options.cgroup_driver = CgroupDriver::parse(&value("cgroupfs or systemd")?)?;
            }
            "--keep" => options.keep = true,
            "--no-e2e" => options.no_e2e = true,
            "--" => options.e2e_args = args.by_ref().collect(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    options.k8s_bin =
        k8s_bin.with_context(|| format!("--k8s-bin or $K8S_BIN is needed\n{USAGE}"))?;
    if options.no_e2e && !options.keep {
        bail!("--no-e2e only makes sense with --keep");
    }
    if options.serial && options.procs.is_some_and(|n| n != 1) {
        bail!("--serial runs on one process");
    }
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kubectl",
        "e2e.test",
        "agnhost",
    ] {
        if !options.k8s_bin.join(name).is_file() && (name != "e2e.test" || !options.no_e2e) {
            bail!("{} has no {name}", options.k8s_bin.display());
        }
    }
    Ok(options)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn etcd_bin(options: &Options) -> Result<PathBuf> {
    options
        .etcd
        .clone()
        .or_else(|| Some(options.k8s_bin.join("etcd")).filter(|p| p.is_file()))
        .or_else(|| which("etcd"))
        .context("no etcd: pass --etcd PATH (Debian: apt-get install etcd-server)")
}

/// What runs while the suite runs; dropped in reverse order of declaration.
struct Env {
    components: Vec<Component>,
    layout: Layout,
    cgroups: NodeCgroups,
    crius: Crius,
    sysctls: Vec<(String, String)>,
    _node_address: NodeAddress,
    _network: TestNetwork,
    registry: TestRegistry,
    work: tempfile::TempDir,
}

async fn setup(options: &Options) -> Result<Env> {
    let work = tempfile::Builder::new()
        .prefix("crius-conformance-")
        .tempdir()
        .context("creating the work directory")?;
    std::fs::create_dir_all(work.path().join("logs"))?;
    let registry = TestRegistry::start(RegistryMode::Plain).await?;
    let network = TestNetwork::new()?;
    let n = network
        .subnet()
        .split('.')
        .nth(2)
        .and_then(|o| o.parse::<u8>().ok())
        .context("the test network's third octet")?;
    let cgroups = NodeCgroups::new(options.cgroup_driver, n)?;
    let crius = Crius::builder()
        .bin(&crius_e2e::daemon::chosen_crius_bin(
            options.bin.as_deref(),
        )?)
        .log_level("info")
        .network(&network)
        .insecure(&registry.host())
        // The fake registry the private-registry pull specs run (agnhost, host network).
        .insecure("localhost:5000")
        .config_value("runtime.cgroup_manager", cgroups.driver.as_str())
        .config_value("runtime.cgroup_parent", cgroups.crius_parent().as_str())
        .config_value("runtime.monitor_cgroup", cgroups.monitor_cgroup().as_str())
        .start()
        .await
        .context("starting crius")?;
    eprintln!(
        "conformance: crius pid {} on {}, network {}, cgroup driver {}",
        crius.pid().unwrap_or(0),
        crius.socket().display(),
        network.subnet(),
        cgroups.driver.as_str()
    );
    let started = Instant::now();
    let pushed = images::push_all(&registry, &options.k8s_bin, &crius.runroot().join("pause"))
        .await
        .context("building the images")?;
    eprintln!(
        "conformance: registry {} serves {} ({:.1?})",
        registry.host(),
        pushed.join(", "),
        started.elapsed()
    );
    std::fs::write(
        work.path().join("repo-list.yaml"),
        images::repo_list(&registry),
    )?;

    let node_address = NodeAddress::create(n)?;
    let apiserver_port = free_port()?;
    let pki = certs::generate(
        &work.path().join("pki"),
        NODE,
        &node_address.ip,
        apiserver_port,
    )?;
    let layout = Layout {
        k8s_bin: options.k8s_bin.clone(),
        etcd: etcd_bin(options)?,
        work: work.path().to_path_buf(),
        pki,
        node: NODE.to_string(),
        node_ip: node_address.ip.clone(),
        apiserver_port,
        crius_socket: crius.socket().to_path_buf(),
        cgroup_root: cgroups.kubelet_root(),
        cgroup_driver: cgroups.driver,
        kubelet_dir_existed: Path::new(cluster::KUBELET_FIXED_DIR).exists(),
    };
    let sysctls = cluster::save_sysctls();
    Ok(Env {
        components: Vec::new(),
        layout,
        cgroups,
        crius,
        sysctls,
        _node_address: node_address,
        _network: network,
        registry,
        work,
    })
}

fn start_cluster(env: &mut Env) -> Result<()> {
    let started = Instant::now();
    let layout = &env.layout;
    let (etcd, etcd_port) = cluster::start_etcd(layout)?;
    env.components.push(etcd);
    env.components
        .push(cluster::start_apiserver(layout, etcd_port)?);
    let mut refs: Vec<&mut Component> = env.components.iter_mut().collect();
    cluster::wait_until(
        "the API server's /readyz",
        Duration::from_secs(120),
        &mut refs,
        || cluster::kubectl(layout, &["get", "--raw", "/readyz"]).is_ok(),
    )?;
    eprintln!("conformance: API server ready ({:.1?})", started.elapsed());
    env.components
        .push(cluster::start_controller_manager(layout)?);
    env.components.push(cluster::start_scheduler(layout)?);
    env.cgroups.create()?;
    env.components.push(cluster::start_kubelet(layout)?);
    let mut refs: Vec<&mut Component> = env.components.iter_mut().collect();
    cluster::wait_until(
        &format!("node {NODE} to be Ready"),
        Duration::from_secs(180),
        &mut refs,
        || {
            cluster::kubectl(
                layout,
                &[
                    "get",
                    "node",
                    NODE,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ],
            )
            .is_ok_and(|s| s.trim() == "True")
        },
    )?;
    cluster::wait_until(
        "the default service account",
        Duration::from_secs(60),
        &mut refs,
        || cluster::kubectl(layout, &["get", "serviceaccount", "default"]).is_ok(),
    )?;
    eprintln!(
        "conformance: node {NODE} ({}) Ready, cluster up in {:.1?}",
        layout.node_ip,
        started.elapsed()
    );
    Ok(())
}

/// The `e2e.test` arguments of the mode, then the caller's.
fn e2e_args(options: &Options, env: &Env, report_dir: &Path) -> Result<Vec<String>> {
    let (focus, skip) = if options.serial {
        (SERIAL_FOCUS, SERIAL_SKIP)
    } else {
        (FOCUS, SKIP)
    };
    let focus = options.focus.as_deref().unwrap_or(focus);
    let skip = options.skip.as_deref().unwrap_or(skip);
    let layout = &env.layout;
    let mut args = vec![
        "--provider=local".to_string(),
        format!(
            "--kubeconfig={}",
            certs::path(&layout.pki.kubeconfig(Client::Admin))?
        ),
        format!(
            "--kube-test-repo-list={}",
            certs::path(&layout.work.join("repo-list.yaml"))?
        ),
        format!(
            "--kubelet-root-dir={}",
            certs::path(&layout.kubelet_root())?
        ),
        format!("--report-dir={}", certs::path(report_dir)?),
        format!("--e2e-output-dir={}", certs::path(report_dir)?),
        "--ginkgo.focus".to_string(),
        focus.to_string(),
        "--ginkgo.skip".to_string(),
        skip.to_string(),
        format!("--ginkgo.timeout={}", options.timeout),
        "--ginkgo.no-color".to_string(),
    ];
    args.extend(options.e2e_args.iter().cloned());
    Ok(args)
}

/// Runs the suite: `e2e.test` itself on one process, else `ginkgo --procs N e2e.test -- …`.
async fn run_e2e(options: &Options, env: &Env, report_dir: &Path) -> Result<i32> {
    let procs = if options.serial {
        1
    } else {
        options.procs.unwrap_or(2)
    };
    let e2e = options.k8s_bin.join("e2e.test");
    let args = e2e_args(options, env, report_dir)?;
    let mut command = if procs > 1 {
        let ginkgo = options.k8s_bin.join("ginkgo");
        if !ginkgo.is_file() {
            bail!("--procs {procs} needs {}", ginkgo.display());
        }
        let mut command = tokio::process::Command::new(ginkgo);
        command
            .arg(format!("--procs={procs}"))
            .arg(format!("--timeout={}", options.timeout))
            .arg("--no-color")
            .arg(&e2e)
            .arg("--")
            .args(
                args.iter()
                    .filter(|a| !a.starts_with("--ginkgo.timeout") && *a != "--ginkgo.no-color"),
            );
        command
    } else {
        let mut command = tokio::process::Command::new(&e2e);
        command.args(&args);
        command
    };
    command.current_dir(report_dir).kill_on_drop(true);
    eprintln!("conformance: {:?}", command.as_std());
    let started = Instant::now();
    let mut child = command.spawn().context("running e2e.test")?;
    let mut interrupts = 0;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts > 1 {
                    let _ = child.start_kill();
                }
            }
        }
    };
    eprintln!(
        "conformance: e2e.test finished ({status}) after {:.1?}",
        started.elapsed()
    );
    Ok(status.code().unwrap_or(128 + 9))
}

async fn teardown(mut env: Env, report_dir: &Path) -> Result<()> {
    let mut errors = Vec::new();
    // The kubelet first, so it restarts nothing; then the control plane, newest first.
    while let Some(mut component) = env.components.pop() {
        component.stop();
    }
    let logs = report_dir.join("logs");
    if std::fs::create_dir_all(&logs).is_ok()
        && let Ok(entries) = std::fs::read_dir(env.layout.logs())
    {
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), logs.join(entry.file_name()));
        }
        let _ = std::fs::copy(env.crius.log_path(), logs.join("crius.log"));
    }
    if env.crius.is_running() {
        match cri::runtime_client(env.crius.socket()).await {
            Ok(mut client) => {
                if let Err(e) = cleanup_all(&mut client).await {
                    errors.push(format!("{e:#}"));
                }
            }
            Err(e) => errors.push(format!("connecting for cleanup: {e:#}")),
        }
        if let Err(e) = env.crius.stop().await {
            errors.push(format!("stopping crius: {e:#}"));
        }
    } else {
        errors.push("crius was no longer running".to_string());
    }
    cluster::unmount_under(env.work.path());
    if !env.layout.kubelet_dir_existed {
        // The kubelet makes /var/lib/kubelet/device-plugins whatever its root directory.
        let _ = std::fs::remove_dir_all(cluster::KUBELET_FIXED_DIR);
    }
    remove_dangling_container_logs(&env.layout.pod_logs());
    env.cgroups.remove();
    cluster::restore_sysctls(&env.sysctls);
    env.registry.stop();
    drop(env);
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("teardown: {}", errors.join("; "))
    }
}

/// The kubelet links each container's log into `/var/log/containers` (a fixed path); the
/// links into this run's pod log directory go with it.
fn remove_dangling_container_logs(pod_logs: &Path) {
    let Ok(entries) = std::fs::read_dir("/var/log/containers") else {
        return;
    };
    for entry in entries.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path())
            && target.starts_with(pod_logs)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let options = parse_args()?;
    std::fs::create_dir_all(&options.report_dir)
        .with_context(|| format!("creating {}", options.report_dir.display()))?;
    let report_dir = options.report_dir.canonicalize()?;
    let started = Instant::now();
    let mut env = setup(&options).await?;
    if let Err(e) = start_cluster(&mut env) {
        if let Err(t) = teardown(env, &report_dir).await {
            eprintln!("conformance: {t:#}");
        }
        return Err(e);
    }
    eprintln!("conformance: set up in {:.1?}", started.elapsed());
    let result = if options.no_e2e {
        Ok(0)
    } else {
        run_e2e(&options, &env, &report_dir).await
    };
    if options.keep {
        let kubeconfig = env.layout.pki.kubeconfig(Client::Admin);
        println!("conformance: the cluster is up");
        println!(
            "  {}/kubectl --kubeconfig {} get nodes",
            options.k8s_bin.display(),
            kubeconfig.display()
        );
        println!("  logs: {}", env.layout.logs().display());
        println!("conformance: Ctrl-C to tear down");
        let _ = tokio::signal::ctrl_c().await;
    }
    let torn_down = teardown(env, &report_dir).await;
    let code = result?;
    torn_down?;
    if !options.no_e2e {
        eprintln!("conformance: e2e.test exited with {code}");
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
