//! `crius oci`: a runc-compatible command line over [`crate::libcontainer`], as conmon and cri-o
//! drive runc. It takes runc's own global flags (`--root`, `--log`, `--log-format`,
//! `--systemd-cgroup`), so the daemon's CLI hands it the raw trailing arguments.
//!
//! This path stays single-threaded (no async runtime): it forks.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand, ValueEnum};
use oci_spec::runtime::Process;

use crate::libcontainer::cgroups::Driver;
use crate::libcontainer::container::ContainerId;
use crate::libcontainer::container::create::{self, CreateOpts};
use crate::libcontainer::container::exec::{self, ExecOpts};
use crate::libcontainer::container::ops;
use crate::libcontainer::container::state::rfc3339;
use crate::libcontainer::error::{Error, Result};

pub const DEFAULT_ROOT: &str = "/run/crius-oci";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "crius oci", about = "runc-compatible OCI runtime", version)]
pub struct OciCli {
    /// Directory for container state.
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Append errors to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Use the systemd cgroup driver: `linux.cgroupsPath` is "slice:prefix:name" and the
    /// container's cgroup is a transient scope unit (default `system.slice:crius:<id>`).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container whose process waits for `start`.
    Create {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        no_pivot: bool,
        #[arg(long)]
        no_new_keyring: bool,
        #[arg(long, default_value_t = 0)]
        preserve_fds: i32,
        id: String,
    },
    /// Start a created container's process.
    Start { id: String },
    /// Print the runtime-spec state of a container.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init, or with --all to every process.
    Kill {
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped (or, with --force, any) container.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Run a process in a running container.
    Exec {
        #[arg(long, short = 'p')]
        process: Option<PathBuf>,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[arg(long, short = 't')]
        tty: bool,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        preserve_fds: i32,
        id: String,
        /// Command and arguments when --process is not given.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Update the container's cgroup resources from a JSON file (`-` for stdin).
    Update {
        #[arg(long, short = 'r')]
        resources: PathBuf,
        id: String,
    },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print the runtime-spec features document.
    Features,
}

/// Entry point: `args` are the arguments after `oci`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("crius oci")).chain(args);
    let cli = match OciCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&cli, &e.to_string());
            ExitCode::from(1)
        }
    }
}

/// One line on stderr, and one line in `--log` in the requested format.
fn report(cli: &OciCli, msg: &str) {
    eprintln!("crius oci: {msg}");
    let Some(path) = &cli.log else { return };
    let time = rfc3339(SystemTime::now());
    let line = match cli.log_format {
        LogFormat::Json => {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level=error msg={msg:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn id(s: &str) -> Result<ContainerId> {
    ContainerId::parse(s)
}

fn exec_process(
    root: &Path,
    cid: &ContainerId,
    file: Option<&Path>,
    args: &[String],
) -> Result<Process> {
    if let Some(f) = file {
        let data =
            std::fs::read(f).map_err(|e| Error::io(format!("reading {}", f.display()), e))?;
        return serde_json::from_slice(&data)
            .map_err(|e| Error::Invalid(format!("{}: {e}", f.display())));
    }
    if args.is_empty() {
        return Err(Error::Invalid("exec: give --process or a command".into()));
    }
    let st = crate::libcontainer::container::state::State::load(root, cid)?;
    let spec = create::load_spec(&st.bundle)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.to_vec()));
    p.set_terminal(Some(false));
    Ok(p)
}

fn run(cli: &OciCli) -> Result<u8> {
    let root = &cli.root;
    match &cli.command {
        Command::Create {
            bundle,
            pid_file,
            console_socket,
            no_pivot,
            no_new_keyring: _,
            preserve_fds,
            id: i,
        } => create::create(&CreateOpts {
            root: root.clone(),
            id: id(i)?,
            bundle: bundle.clone(),
            pid_file: pid_file.clone(),
            console_socket: console_socket.clone(),
            no_pivot: *no_pivot,
            preserve_fds: *preserve_fds,
            cgroup_driver: if cli.systemd_cgroup {
                Driver::Systemd
            } else {
                Driver::Cgroupfs
            },
        })?,
        Command::Start { id: i } => ops::start(root, &id(i)?)?,
        Command::State { id: i } => {
            let st = ops::state(root, &id(i)?)?;
            let s = serde_json::to_string_pretty(&st).map_err(|e| Error::Invalid(e.to_string()))?;
            print_out(&s);
        }
        Command::Kill { all, id: i, signal } => {
            ops::kill_container(root, &id(i)?, ops::parse_signal(signal)?, *all)?
        }
        Command::Delete { force, id: i } => ops::delete(root, &id(i)?, *force)?,
        Command::Exec {
            process,
            detach,
            pid_file,
            tty,
            console_socket,
            preserve_fds,
            id: i,
            args,
        } => {
            let cid = id(i)?;
            let process = exec_process(root, &cid, process.as_deref(), args)?;
            let code = exec::exec(&ExecOpts {
                root: root.clone(),
                id: cid,
                process,
                detach: *detach,
                pid_file: pid_file.clone(),
                console_socket: console_socket.clone(),
                tty: *tty,
                preserve_fds: *preserve_fds,
            })?;
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        Command::Update { resources, id: i } => ops::update(root, &id(i)?, resources)?,
        Command::Pause { id: i } => ops::pause(root, &id(i)?)?,
        Command::Resume { id: i } => ops::resume(root, &id(i)?)?,
        Command::Features => {
            let s = serde_json::to_string_pretty(&crate::libcontainer::features::features())
                .map_err(|e| Error::Invalid(e.to_string()))?;
            print_out(&s);
        }
    }
    Ok(0)
}

/// Writes a line to stdout; a reader that went away (`| head`) is not crius' failure, and
/// `println!` would panic on it.
fn print_out(s: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}
