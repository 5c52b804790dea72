//! Runs cri-tools' conformance suite `critest` against a throw-away crius, offline.
//!
//! ```text
//! cargo build -p crius -p crius-monitor -p crius-e2e --bins
//! cargo run -p crius-e2e --bin critest-env -- [--critest PATH] [--bin PATH-TO-CRIUS] \
//!     [--log-level LEVEL] [--daemon-log FILE] [--keep] [--no-critest] \
//!     -- [critest args...]
//! ```
//!
//! It starts a loopback registry holding stand-ins for every image critest pulls
//! ([`crius_e2e::critest_images`]), a CNI test network (no default route, no masquerading) and
//! a crius whose `registry.k8s.io`, `k8s.gcr.io` and `gcr.io` mirrors point at that registry,
//! with a cgroup parent of its own. Then it runs `critest --runtime-endpoint unix://<socket>
//! --image-endpoint unix://<socket>` plus the arguments after `--`, with its output on this
//! terminal, and finally removes every pod, stops the daemon and deletes the cgroup parent.
//! Everything it writes lives in temporary directories (`--daemon-log` copies the daemon's log
//! out before they go). `--keep` leaves the daemon up after critest (or instead of it, with
//! `--no-critest`) for manual `crictl` use until Ctrl-C. Exits with critest's status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use crius_e2e::critest_images::{self, DIGEST_IMAGE, UPSTREAMS};
use crius_e2e::pods::env::remove_cgroup_tree;
use crius_e2e::pods::requests::unique_uid;
use crius_e2e::pods::{TestNetwork, cleanup_all};
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::{Crius, cri};

const USAGE: &str = "usage: critest-env [--critest PATH] [--bin PATH-TO-CRIUS] [--log-level LEVEL]
                   [--daemon-log FILE] [--keep] [--no-critest]
                   [-- CRITEST-ARGS...]";

struct Options {
    critest: Option<PathBuf>,
    bin: Option<PathBuf>,
    log_level: String,
    daemon_log: Option<PathBuf>,
    keep: bool,
    no_critest: bool,
    critest_args: Vec<String>,
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        critest: None,
        bin: None,
        log_level: "info".to_string(),
        daemon_log: None,
        keep: false,
        no_critest: false,
        critest_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--critest" => options.critest = Some(PathBuf::from(value("a path")?)),
            "--bin" => options.bin = Some(PathBuf::from(value("a path")?)),
            "--log-level" => options.log_level = value("a level")?,
            "--daemon-log" => options.daemon_log = Some(PathBuf::from(value("a path")?)),
            "--keep" => options.keep = true,
            "--no-critest" => options.no_critest = true,
            "--" => {
                options.critest_args = args.by_ref().collect();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if options.no_critest && !options.keep {
        bail!("--no-critest only makes sense with --keep");
    }
    Ok(options)
}

fn critest_bin(options: &Options) -> Result<Option<PathBuf>> {
    if options.no_critest {
        return Ok(None);
    }
    let bin = options
        .critest
        .clone()
        .or_else(|| {
            // `critest` on $PATH.
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("critest"))
                    .find(|p| p.is_file())
            })
        })
        .unwrap_or_else(|| PathBuf::from("critest"));
    if !bin.is_file() {
        bail!(
            "critest not found at {}: build it from cri-tools (`go test -c -o critest ./cmd/critest`) \
             and pass --critest PATH",
            bin.display()
        );
    }
    Ok(Some(bin))
}

struct Env {
    crius: Crius,
    cgroup_parent: String,
    // Dropped after the daemon: it uses both.
    _network: TestNetwork,
    registry: TestRegistry,
}

async fn setup(options: &Options) -> Result<Env> {
    let registry = TestRegistry::start(RegistryMode::Plain).await?;
    eprintln!("critest-env: building and pushing the stand-in images");
    let names = critest_images::push_all(&registry).await?;
    eprintln!(
        "critest-env: registry {} serves {} images (not {DIGEST_IMAGE})",
        registry.host(),
        names.len()
    );
    let network = TestNetwork::new()?;
    let cgroup_parent = format!("/crius-critest-{}", unique_uid());
    let builder = Crius::builder()
        .bin(&crius_e2e::daemon::chosen_crius_bin(
            options.bin.as_deref(),
        )?)
        .log_level(&options.log_level)
        .network(&network)
        .config_value("runtime.cgroup_parent", cgroup_parent.as_str())
        .config_value(
            "runtime.monitor_cgroup",
            crius_e2e::pods::env::monitor_cgroup(&cgroup_parent).as_str(),
        );
    let crius = critest_images::configure(builder, &registry)
        .start()
        .await
        .context("starting crius")?;
    eprintln!(
        "critest-env: crius pid {} on {} (mirrors for {} -> {}/<registry>), network {}, cgroup parent {}",
        crius.pid().unwrap_or(0),
        crius.socket().display(),
        UPSTREAMS.join(", "),
        registry.host(),
        network.subnet(),
        cgroup_parent,
    );
    Ok(Env {
        crius,
        cgroup_parent,
        _network: network,
        registry,
    })
}

/// Runs critest in a temporary working directory; a first Ctrl-C reaches critest too (same
/// process group) and is waited out, a second one kills it.
async fn run_critest(bin: &Path, runtime: &Path, image: &Path, args: &[String]) -> Result<i32> {
    let runtime = format!("unix://{}", runtime.display());
    let image = format!("unix://{}", image.display());
    let workdir = tempfile::Builder::new()
        .prefix("crius-critest-")
        .tempdir()?;
    let mut command = tokio::process::Command::new(bin);
    command
        .arg("--runtime-endpoint")
        .arg(&runtime)
        .arg("--image-endpoint")
        .arg(&image)
        .args(args)
        .current_dir(workdir.path())
        .kill_on_drop(true);
    eprintln!(
        "critest-env: {} --runtime-endpoint {runtime} --image-endpoint {image} {}",
        bin.display(),
        args.join(" ")
    );
    let mut child = command
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
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
    Ok(status.code().unwrap_or(128 + 9))
}

async fn teardown(mut env: Env, daemon_log: Option<&Path>) -> Result<()> {
    let mut errors = Vec::new();
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
    if let Some(path) = daemon_log
        && let Err(e) = std::fs::copy(env.crius.log_path(), path)
    {
        errors.push(format!("copying the daemon log to {}: {e}", path.display()));
    }
    remove_cgroup_tree(&env.cgroup_parent);
    remove_cgroup_tree(&crius_e2e::pods::env::monitor_cgroup(&env.cgroup_parent));
    env.registry.stop();
    drop(env);
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("teardown: {}", errors.join("; "))
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let options = parse_args()?;
    let critest = critest_bin(&options)?;
    let env = setup(&options).await?;
    let socket = env.crius.socket().to_path_buf();
    let runtime = socket.as_path();
    let result = match &critest {
        Some(bin) => run_critest(bin, runtime, &socket, &options.critest_args).await,
        None => Ok(0),
    };
    if options.keep {
        let endpoint = format!("unix://{}", socket.display());
        let runtime = format!("unix://{}", runtime.display());
        println!("critest-env: crius is running on {}", socket.display());
        println!("  crictl --runtime-endpoint {runtime} --image-endpoint {endpoint} pods");
        println!("  daemon log: {}", env.crius.log_path().display());
        println!("critest-env: Ctrl-C to tear down");
        let _ = tokio::signal::ctrl_c().await;
    }
    let torn_down = teardown(env, options.daemon_log.as_deref()).await;
    let code = result?;
    torn_down?;
    eprintln!("critest-env: critest exited with {code}");
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
