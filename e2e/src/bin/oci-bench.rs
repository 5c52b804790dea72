//! OCI runtime benchmark: create, start, wait and delete of a busybox `/bin/true` container,
//! N times sequentially, with `crius oci`, Debian's `runc` and (when installed) `crun`, interleaved
//! in one run so they share the machine's state. Prints the median per container and the ratios.
//!
//! ```text
//! cargo build --release --bin crius
//! cargo run --release -p crius-e2e --bin oci-bench -- [--runs N] [--bin PATH]
//! ```
//!
//! crun 1.8.1 refuses this host's hybrid cgroup layout because the cgroup2 mount lists a
//! controller; it runs here inside a private mount namespace in which an empty file hides
//! `/sys/fs/cgroup/unified/cgroup.controllers`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_e2e::daemon::crius_bin;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

struct Runtime {
    name: &'static str,
    /// The command line up to (not including) runc's global flags.
    argv: Vec<String>,
    root: tempfile::TempDir,
    samples: Vec<Duration>,
}

impl Runtime {
    fn new(name: &'static str, argv: Vec<String>) -> Result<Runtime> {
        Ok(Runtime {
            name,
            argv,
            root: tempfile::Builder::new()
                .prefix("crius-oci-bench")
                .tempdir()?,
            samples: Vec::new(),
        })
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            // Not a pipe: the container inherits the runtime's stdio and would hold it open.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("{} {args:?}", self.name))?;
        if !out.success() {
            bail!("{} {args:?} failed: {out}", self.name);
        }
        Ok(String::new())
    }

    /// One container's life; the container's pid comes from `--pid-file` and, as this process is
    /// a subreaper, is reaped here.
    fn once(&mut self, bundle: &Path, id: &str) -> Result<()> {
        let pid_file = self.root.path().join(format!("{id}.pid"));
        let pid_arg = pid_file.display().to_string();
        let bundle_arg = bundle.display().to_string();
        let started = Instant::now();
        self.run(&[
            "create",
            "--bundle",
            &bundle_arg,
            "--pid-file",
            &pid_arg,
            id,
        ])?;
        self.run(&["start", id])?;
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        waitpid(Pid::from_raw(pid), None).with_context(|| format!("{}: wait {pid}", self.name))?;
        self.run(&["delete", id])?;
        self.samples.push(started.elapsed());
        std::fs::remove_file(&pid_file)?;
        Ok(())
    }

    fn median(&self) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

fn bundle(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/true"))?;
    let status = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(dir)
        .status()?;
    if !status.success() {
        bail!("runc spec failed");
    }
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    spec["linux"]["cgroupsPath"] = format!("/crius-bench-{}", std::process::id()).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// crun behind the mount-namespace wrapper described above, when crun is installed.
fn crun(dir: &Path) -> Result<Option<Vec<String>>> {
    if Command::new("crun").arg("--version").output().is_err() {
        return Ok(None);
    }
    let empty = dir.join("empty-controllers");
    std::fs::write(&empty, "")?;
    let script = format!(
        "mount --bind {} /sys/fs/cgroup/unified/cgroup.controllers && exec crun \"$@\"",
        empty.display()
    );
    Ok(Some(vec![
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        script,
        "crun".into(),
    ]))
}

fn main() -> Result<()> {
    let mut runs = 100;
    let mut bin = crius_bin();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--bin" => bin = PathBuf::from(args.next().context("--bin PATH")?),
            other => bail!("unknown argument {other}"),
        }
    }
    nix::sys::prctl::set_child_subreaper(true)?;
    let work = tempfile::Builder::new()
        .prefix("crius-oci-bench")
        .tempdir()?;
    let bundle_dir = work.path().join("bundle");
    bundle(&bundle_dir)?;

    let mut runtimes = vec![
        Runtime::new("crius oci", vec![bin.display().to_string(), "oci".into()])?,
        Runtime::new("runc", vec!["runc".into()])?,
    ];
    match crun(work.path())? {
        Some(argv) => runtimes.push(Runtime::new("crun", argv)?),
        None => println!("crun not installed: compared with runc only"),
    }
    for i in 0..runs {
        for rt in &mut runtimes {
            rt.once(&bundle_dir, &format!("bench-{i}"))?;
        }
    }
    let ours = runtimes[0].median();
    println!("{runs} sequential create+start+wait+delete of /bin/true, median per container:");
    for rt in &runtimes {
        let m = rt.median();
        println!(
            "{:<10} {:>8.1} ms   {:.2}x crius",
            rt.name,
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}
