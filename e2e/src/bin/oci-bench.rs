//! OCI runtime benchmark: create, start, wait and delete of a busybox `/bin/true` container,
//! N times sequentially, with `crius oci`, Debian's `runc` and (when installed) `crun`, interleaved
//! in one run (in a random order each round) so they share the machine's state. Prints the median
//! of each phase (create, start, wait, delete) and of the whole life per container, and the ratios
//! to crius.
//!
//! ```text
//! cargo build --release -p crius --bins
//! cargo run --release -p crius-e2e --bin oci-bench -- [--runs N] [--bin PATH] [--baseline PATH]
//! ```
//!
//! `--baseline` adds another crius binary (e.g. a build before a change) as "crius base".
//!
//! `apt-get install crun` enables the comparison with crun (it is not part of the test suite's
//! dependencies). crun 1.8.1 refuses this host's hybrid cgroup layout because the cgroup2 mount
//! lists a controller ("cgroups in hybrid mode not supported"); the bench therefore keeps one
//! private mount namespace in which an empty file hides `/sys/fs/cgroup/unified/cgroup.controllers`
//! and each crun invocation `setns`es into it before its exec, so crun pays no wrapper process.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_e2e::daemon::crius_bin;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use rand::seq::SliceRandom;

const PHASES: [&str; 5] = ["create", "start", "wait", "delete", "total"];

struct Runtime {
    name: &'static str,
    /// The command line up to (not including) runc's global flags.
    argv: Vec<String>,
    /// Mount namespace to enter before exec (crun's).
    mntns: Option<OwnedFd>,
    root: tempfile::TempDir,
    /// Per container: create, start, wait, delete, total.
    samples: Vec<[Duration; 5]>,
}

impl Runtime {
    fn new(name: &'static str, argv: Vec<String>, mntns: Option<OwnedFd>) -> Result<Runtime> {
        Ok(Runtime {
            name,
            argv,
            mntns,
            root: tempfile::Builder::new()
                .prefix("crius-oci-bench")
                .tempdir()?,
            samples: Vec::new(),
        })
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            // Not a pipe: the container inherits the runtime's stdio and would hold it open.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(ns) = &self.mntns {
            let fd = ns.as_raw_fd();
            // SAFETY: setns is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(move || {
                    let ns = std::os::fd::BorrowedFd::borrow_raw(fd);
                    nix::sched::setns(ns, CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)
                });
            }
        }
        let out = cmd
            .status()
            .with_context(|| format!("{} {args:?}", self.name))?;
        if !out.success() {
            bail!("{} {args:?} failed: {out}", self.name);
        }
        Ok(())
    }

    /// One container's life; the container's pid comes from `--pid-file` and, as this process is
    /// a subreaper, is reaped here.
    fn once(&mut self, bundle: &Path, id: &str) -> Result<()> {
        let pid_file = self.root.path().join(format!("{id}.pid"));
        let pid_arg = pid_file.display().to_string();
        let bundle_arg = bundle.display().to_string();
        let t0 = Instant::now();
        self.run(&[
            "create",
            "--bundle",
            &bundle_arg,
            "--pid-file",
            &pid_arg,
            id,
        ])?;
        let t1 = Instant::now();
        self.run(&["start", id])?;
        let t2 = Instant::now();
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        waitpid(Pid::from_raw(pid), None).with_context(|| format!("{}: wait {pid}", self.name))?;
        let t3 = Instant::now();
        self.run(&["delete", id])?;
        let t4 = Instant::now();
        self.samples
            .push([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0]);
        std::fs::remove_file(&pid_file)?;
        Ok(())
    }

    fn median(&self, phase: usize) -> Duration {
        let mut sorted: Vec<Duration> = self.samples.iter().map(|s| s[phase]).collect();
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

/// A `sleep` in a private mount namespace where cgroup.controllers of the cgroup2 mount is
/// hidden; crun enters that namespace. Killed and reaped on drop.
struct CrunNamespace {
    holder: Child,
    ns: Option<OwnedFd>,
}

impl CrunNamespace {
    fn new(dir: &Path) -> Result<CrunNamespace> {
        let empty = dir.join("empty-controllers");
        std::fs::write(&empty, "")?;
        let script = format!(
            "mount --bind {} /sys/fs/cgroup/unified/cgroup.controllers && echo ready && exec sleep infinity",
            empty.display()
        );
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("unshare")?;
        let mut this = CrunNamespace { holder, ns: None };
        let mut line = String::new();
        if let Some(out) = this.holder.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        if line.trim() != "ready" {
            bail!("could not hide cgroup.controllers for crun");
        }
        let path = format!("/proc/{}/ns/mnt", this.holder.id());
        this.ns = Some(std::fs::File::open(&path).context(path)?.into());
        Ok(this)
    }
}

impl Drop for CrunNamespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn crun_installed() -> bool {
    Command::new("crun").arg("--version").output().is_ok()
}

fn main() -> Result<()> {
    let mut runs = 100;
    let mut bin = crius_bin();
    let mut baseline = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--bin" => bin = PathBuf::from(args.next().context("--bin PATH")?),
            "--baseline" => baseline = Some(args.next().context("--baseline PATH")?),
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
        Runtime::new(
            "crius oci",
            vec![bin.display().to_string(), "oci".into()],
            None,
        )?,
        Runtime::new("runc", vec!["runc".into()], None)?,
    ];
    if let Some(b) = baseline {
        runtimes.push(Runtime::new("crius base", vec![b, "oci".into()], None)?);
    }
    let mut crun_ns = None;
    if crun_installed() {
        let ns = crun_ns.insert(CrunNamespace::new(work.path())?);
        let fd = ns.ns.as_ref().map(|f| f.try_clone()).transpose()?;
        runtimes.push(Runtime::new("crun", vec!["crun".into()], fd)?);
    } else {
        println!("crun not installed (apt-get install crun): compared with runc only");
    }
    // A fresh random order each round: a runtime's cost depends on what ran just before it
    // (e.g. whether an RCU grace period is still pending from the previous cgroup attach).
    let mut order: Vec<usize> = (0..runtimes.len()).collect();
    let mut rng = rand::rng();
    for i in 0..runs {
        order.shuffle(&mut rng);
        for &k in &order {
            runtimes[k].once(&bundle_dir, &format!("bench-{i}"))?;
        }
    }
    drop(crun_ns);
    println!("{runs} sequential create+start+wait+delete of /bin/true, median per container (ms):");
    print!("{:<10}", "");
    for p in PHASES {
        print!(" {p:>8}");
    }
    println!();
    for rt in &runtimes {
        print!("{:<10}", rt.name);
        for p in 0..PHASES.len() {
            print!(" {:>8.2}", rt.median(p).as_secs_f64() * 1e3);
        }
        println!();
    }
    println!("ratio to crius oci (>1: crius is faster):");
    for rt in &runtimes[1..] {
        print!("{:<10}", rt.name);
        for p in 0..PHASES.len() {
            let ours = runtimes[0].median(p).as_secs_f64();
            print!(" {:>7.2}x", rt.median(p).as_secs_f64() / ours);
        }
        println!();
    }
    Ok(())
}
