//! The monitor's command line: [`LaunchOptions::to_args`] is what the daemon runs,
//! [`parse`] what the monitor reads back. Hand-parsed (`--name value` or `--name=value`): a dozen
//! options do not need a parser crate, and the monitor stays small.
//!
//! ```text
//! crius-monitor container --id ID --bundle DIR --exit-file FILE [options]
//! crius-monitor exec      --id ID --exit-file FILE (--process FILE | -- CMD ARGS...) [options]
//! crius-monitor exec-sync --id ID [--timeout SECS] [--output-limit BYTES] (--process FILE | -- CMD ARGS...)
//! ```

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: crius-monitor container --id ID --bundle DIR --exit-file FILE [options]
       crius-monitor exec      --id ID --exit-file FILE (--process FILE | -- CMD ARGS...) [options]
       crius-monitor exec-sync --id ID [--timeout SECS] [--output-limit BYTES] (--process FILE | -- CMD ARGS...)

container  creates the container with the runtime, reports its pid, and monitors it until it exits
exec       runs a process in a running container (after the first attach client connects) and monitors it
exec-sync  runs a process in a running container, waits for it, and prints its exit code and output as JSON

options:
  --runtime PATH          OCI runtime with runc's command line (default: crius, with the argument `oci`)
  --runtime-arg ARG       argument before the runtime's subcommand (repeatable)
  --runtime-root DIR      the runtime's --root
  --sync-fd N             where the pid (or error) JSON line is written (default 1, stdout)
  --exit-file FILE        exit status JSON, written atomically when the process is gone
  --log-path FILE         container log in the CRI format
  --log-max-line BYTES    most content bytes in one log entry (default 16384)
  --attach-socket PATH    unix socket for attach clients
  --control-socket PATH   unix socket for `reopen-log` and `resize ROWS COLS`
  --cgroup PATH           container: once it is created, move the monitor into this cgroup in
                          the hierarchies a service manager tracks processes by
  --terminal              give the process a pty (received over a console socket)
  --stdin                 keep a stdin open for attach clients
  --stdin-once            close stdin when the first client that used it goes away
  --timeout SECS          exec-sync: kill the process after this long (0: never)
  --output-limit BYTES    exec-sync: most bytes kept of stdout and of stderr each (default 16 MiB)
";

/// Most content bytes in one CRI log entry unless `--log-max-line` says otherwise (cri-o's).
pub const DEFAULT_LOG_MAX_LINE: usize = 16 * 1024;
/// Most bytes exec-sync keeps of stdout and of stderr each, unless `--output-limit` says.
pub const DEFAULT_OUTPUT_LIMIT: usize = 16 << 20;

/// The OCI runtime the monitor runs: runc's command line, `<path> <args…> [--root R] <verb> …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    pub path: PathBuf,
    /// Global arguments before the subcommand (`oci` for `crius oci`).
    pub args: Vec<OsString>,
    pub root: Option<PathBuf>,
}

/// What an exec runs: a process.json, or a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecProcess {
    Spec(PathBuf),
    Args(Vec<OsString>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Container {
        bundle: PathBuf,
    },
    Exec {
        process: ExecProcess,
    },
    ExecSync {
        process: ExecProcess,
        /// Whole seconds on the command line (rounded up); `None`: no limit.
        timeout: Option<Duration>,
        output_limit: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchOptions {
    pub mode: Mode,
    pub id: String,
    pub runtime: Runtime,
    /// The sync message's descriptor (1, stdout, unless said otherwise).
    pub sync_fd: i32,
    /// Required except for exec-sync.
    pub exit_file: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    /// `None`: [`DEFAULT_LOG_MAX_LINE`].
    pub log_max_line: Option<usize>,
    pub attach_socket: Option<PathBuf>,
    pub control_socket: Option<PathBuf>,
    /// Container mode: the cgroup (absolute cgroupfs path) the monitor moves itself into once
    /// the container is created.
    pub cgroup: Option<String>,
    pub terminal: bool,
    pub stdin: bool,
    pub stdin_once: bool,
}

/// What a command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<LaunchOptions>),
    Help,
    Version,
}

impl LaunchOptions {
    /// Options for `mode` with everything else absent or at its default.
    pub fn new(mode: Mode, id: impl Into<String>, runtime: Runtime) -> Self {
        LaunchOptions {
            mode,
            id: id.into(),
            runtime,
            sync_fd: 1,
            exit_file: None,
            log_path: None,
            log_max_line: None,
            attach_socket: None,
            control_socket: None,
            cgroup: None,
            terminal: false,
            stdin: false,
            stdin_once: false,
        }
    }

    /// The content bytes one log entry holds at most.
    pub fn max_log_line(&self) -> usize {
        self.log_max_line.unwrap_or(DEFAULT_LOG_MAX_LINE)
    }

    /// The arguments after the monitor's path. The runtime is always spelled out: without
    /// `--runtime` the monitor would run `crius oci` from `$PATH`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mode = match self.mode {
            Mode::Container { .. } => "container",
            Mode::Exec { .. } => "exec",
            Mode::ExecSync { .. } => "exec-sync",
        };
        let mut args: Vec<OsString> = vec![mode.into(), "--id".into(), (&self.id).into()];
        let mut pair = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        pair("--runtime", self.runtime.path.clone().into());
        for arg in &self.runtime.args {
            pair("--runtime-arg", arg.clone());
        }
        if let Some(root) = &self.runtime.root {
            pair("--runtime-root", root.clone().into());
        }
        if self.sync_fd != 1 {
            pair("--sync-fd", self.sync_fd.to_string().into());
        }
        let bundle = match &self.mode {
            Mode::Container { bundle } => Some(bundle),
            _ => None,
        };
        let paths = [
            ("--bundle", bundle),
            ("--exit-file", self.exit_file.as_ref()),
            ("--log-path", self.log_path.as_ref()),
            ("--attach-socket", self.attach_socket.as_ref()),
            ("--control-socket", self.control_socket.as_ref()),
        ];
        for (flag, path) in paths {
            if let Some(path) = path {
                pair(flag, path.clone().into());
            }
        }
        if let Some(max) = self.log_max_line {
            pair("--log-max-line", max.to_string().into());
        }
        if let Some(cgroup) = &self.cgroup {
            pair("--cgroup", cgroup.into());
        }
        if let Mode::ExecSync {
            timeout,
            output_limit,
            ..
        } = &self.mode
        {
            if let Some(t) = timeout.filter(|t| !t.is_zero()) {
                pair("--timeout", whole_seconds(t).to_string().into());
            }
            pair("--output-limit", output_limit.to_string().into());
        }
        for (flag, on) in [
            ("--terminal", self.terminal),
            ("--stdin", self.stdin),
            ("--stdin-once", self.stdin_once),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        match &self.mode {
            Mode::Container { .. } => {}
            Mode::Exec { process } | Mode::ExecSync { process, .. } => match process {
                ExecProcess::Spec(path) => {
                    args.push("--process".into());
                    args.push(path.clone().into());
                }
                ExecProcess::Args(cmd) => {
                    args.push("--".into());
                    args.extend(cmd.iter().cloned());
                }
            },
        }
        args
    }
}

/// A timeout as the command line carries it: whole seconds, rounded up.
pub fn whole_seconds(t: Duration) -> u64 {
    t.as_secs() + u64::from(t.subsec_nanos() > 0)
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mode_name = match args.next() {
        None => return Err("missing mode: container, exec or exec-sync".into()),
        Some(m) => m.into_string().map_err(|m| format!("bad mode {m:?}"))?,
    };
    match mode_name.as_str() {
        "-h" | "--help" | "help" => return Ok(Parsed::Help),
        "-V" | "--version" | "version" => return Ok(Parsed::Version),
        "container" | "exec" | "exec-sync" => {}
        other => {
            return Err(format!(
                "unknown mode {other:?}: container, exec or exec-sync"
            ));
        }
    }

    let mut id = None;
    let mut bundle = None;
    let mut runtime_path: Option<PathBuf> = None;
    let mut runtime_args = Vec::new();
    let mut runtime_root = None;
    let mut sync_fd = 1;
    let mut exit_file = None;
    let mut log_path = None;
    let mut log_max_line = None;
    let mut attach_socket = None;
    let mut control_socket = None;
    let mut cgroup = None;
    let mut terminal = false;
    let mut stdin = false;
    let mut stdin_once = false;
    let mut process_file = None;
    let mut command = Vec::new();
    let mut timeout = None;
    let mut output_limit = DEFAULT_OUTPUT_LIMIT;

    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("bad argument {a:?}"))?;
        if arg == "--" {
            command.extend(args.by_ref());
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(OsString::from(v))),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--terminal" => terminal = true,
            "--stdin" => stdin = true,
            "--stdin-once" => stdin_once = true,
            _ => {
                let value = match inline {
                    Some(v) => v,
                    None => args.next().ok_or(format!("{name} needs a value"))?,
                };
                let text = || {
                    value
                        .to_str()
                        .map(str::to_string)
                        .ok_or(format!("bad value for {name}"))
                };
                match name.as_str() {
                    "--id" => id = Some(text()?),
                    "--bundle" => bundle = Some(PathBuf::from(&value)),
                    "--runtime" => runtime_path = Some(PathBuf::from(&value)),
                    "--runtime-arg" => runtime_args.push(value.clone()),
                    "--runtime-root" => runtime_root = Some(PathBuf::from(&value)),
                    "--sync-fd" => sync_fd = number(&name, &text()?)?,
                    "--exit-file" => exit_file = Some(PathBuf::from(&value)),
                    "--log-path" => log_path = Some(PathBuf::from(&value)),
                    "--log-max-line" => log_max_line = Some(number(&name, &text()?)?),
                    "--attach-socket" => attach_socket = Some(PathBuf::from(&value)),
                    "--control-socket" => control_socket = Some(PathBuf::from(&value)),
                    "--cgroup" => cgroup = Some(text()?),
                    "--process" => process_file = Some(PathBuf::from(&value)),
                    "--timeout" => timeout = Some(number::<u64>(&name, &text()?)?),
                    "--output-limit" => output_limit = number(&name, &text()?)?,
                    _ => return Err(format!("unknown option {name}")),
                }
            }
        }
    }

    let id = id.ok_or("--id is required")?;
    let runtime = match runtime_path {
        Some(path) => Runtime {
            path,
            args: runtime_args,
            root: runtime_root,
        },
        None => Runtime {
            path: "crius".into(),
            args: std::iter::once(OsString::from("oci"))
                .chain(runtime_args)
                .collect(),
            root: runtime_root,
        },
    };
    let exec_process = || match (process_file.clone(), command.is_empty()) {
        (Some(file), true) => Ok(ExecProcess::Spec(file)),
        (None, false) => Ok(ExecProcess::Args(command.clone())),
        (Some(_), false) => {
            Err("give either --process or a command after --, not both".to_string())
        }
        (None, true) => Err("exec needs --process FILE or a command after --".to_string()),
    };
    let mode = match mode_name.as_str() {
        "container" => Mode::Container {
            bundle: bundle.ok_or("--bundle is required")?,
        },
        "exec" => Mode::Exec {
            process: exec_process()?,
        },
        _ => {
            if terminal || stdin || attach_socket.is_some() || log_path.is_some() {
                return Err("exec-sync takes no terminal, stdin, attach socket or log".into());
            }
            Mode::ExecSync {
                process: exec_process()?,
                timeout: timeout.filter(|t| *t > 0).map(Duration::from_secs),
                output_limit,
            }
        }
    };
    if !matches!(mode, Mode::ExecSync { .. }) && exit_file.is_none() {
        return Err("--exit-file is required".into());
    }
    if stdin_once && !stdin {
        return Err("--stdin-once needs --stdin".into());
    }
    if log_max_line == Some(0) {
        return Err("--log-max-line must be at least 1".into());
    }
    if sync_fd < 0 {
        return Err("--sync-fd must not be negative".into());
    }
    if cgroup.as_ref().is_some_and(|c| !is_absolute_cgroup(c)) {
        return Err("--cgroup must be an absolute cgroup path below the root".into());
    }
    Ok(Parsed::Run(Box::new(LaunchOptions {
        mode,
        id,
        runtime,
        sync_fd,
        exit_file,
        log_path,
        log_max_line,
        attach_socket,
        control_socket,
        cgroup,
        terminal,
        stdin,
        stdin_once,
    })))
}

/// `/a/b`: absolute, not the root, no `..`.
fn is_absolute_cgroup(path: &str) -> bool {
    path.starts_with('/')
        && !path.trim_start_matches('/').is_empty()
        && !path.split('/').any(|c| c == "..")
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{name}: bad number {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn run(line: &str) -> Result<LaunchOptions, String> {
        match parse(line.split(' ').map(OsString::from))? {
            Parsed::Run(opts) => Ok(*opts),
            _ => Err("not a run".into()),
        }
    }

    fn line(opts: &LaunchOptions) -> String {
        let args: Vec<String> = opts
            .to_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        args.join(" ")
    }

    fn runc() -> Runtime {
        Runtime {
            path: "/usr/sbin/runc".into(),
            args: vec![],
            root: Some("/run/runc".into()),
        }
    }

    fn round_trip(opts: &LaunchOptions) {
        match parse(opts.to_args()) {
            Ok(Parsed::Run(back)) => assert_eq!(&*back, opts),
            other => panic!("{opts:?} came back as {other:?}"),
        }
    }

    /// The command lines the daemon ran before this crate existed, byte for byte.
    #[test]
    fn the_command_lines_the_daemon_runs() {
        let container = LaunchOptions {
            exit_file: Some("/e".into()),
            log_path: Some("/l".into()),
            log_max_line: Some(100),
            control_socket: Some("/c".into()),
            stdin: true,
            stdin_once: true,
            ..LaunchOptions::new(
                Mode::Container {
                    bundle: "/b".into(),
                },
                "c1",
                runc(),
            )
        };
        assert_eq!(
            line(&container),
            "container --id c1 --runtime /usr/sbin/runc --runtime-root /run/runc --bundle /b \
             --exit-file /e --log-path /l --control-socket /c --log-max-line 100 --stdin --stdin-once"
        );
        let exec = LaunchOptions {
            exit_file: Some("/e".into()),
            attach_socket: Some("/a".into()),
            terminal: true,
            stdin: true,
            stdin_once: true,
            ..LaunchOptions::new(
                Mode::Exec {
                    process: ExecProcess::Args(vec!["sh".into(), "-c".into(), "cat".into()]),
                },
                "c1",
                runc(),
            )
        };
        assert_eq!(
            line(&exec),
            "exec --id c1 --runtime /usr/sbin/runc --runtime-root /run/runc --exit-file /e \
             --attach-socket /a --terminal --stdin --stdin-once -- sh -c cat"
        );
        let crius = Runtime {
            path: "/usr/bin/crius".into(),
            args: vec!["oci".into(), "--log-format=json".into()],
            root: Some("/run/crius-oci".into()),
        };
        let exec_sync = LaunchOptions::new(
            Mode::ExecSync {
                process: ExecProcess::Args(vec!["ls".into()]),
                timeout: Some(Duration::from_millis(1500)),
                output_limit: 1024,
            },
            "c1",
            crius,
        );
        assert_eq!(
            line(&exec_sync),
            "exec-sync --id c1 --runtime /usr/bin/crius --runtime-arg oci \
             --runtime-arg --log-format=json --runtime-root /run/crius-oci --timeout 2 \
             --output-limit 1024 -- ls"
        );
    }

    #[test]
    fn round_trips() {
        let full = LaunchOptions {
            sync_fd: 5,
            exit_file: Some("/e".into()),
            log_path: Some("/l=x".into()),
            log_max_line: Some(10),
            attach_socket: Some("/a".into()),
            control_socket: Some("/c".into()),
            cgroup: Some("/crius-monitors".into()),
            terminal: true,
            stdin: true,
            stdin_once: true,
            ..LaunchOptions::new(
                Mode::Container {
                    bundle: "/b".into(),
                },
                "--odd-id",
                Runtime {
                    path: "crius".into(),
                    args: vec!["oci".into(), "--".into(), "--root".into()],
                    root: None,
                },
            )
        };
        round_trip(&full);
        round_trip(&LaunchOptions {
            mode: Mode::Exec {
                process: ExecProcess::Spec("/p.json".into()),
            },
            ..full.clone()
        });
        round_trip(&LaunchOptions {
            mode: Mode::Exec {
                process: ExecProcess::Args(vec![
                    "--".into(),
                    "--id".into(),
                    OsString::from_vec(vec![0xff, b'x']),
                ]),
            },
            ..full
        });
        for timeout in [None, Some(Duration::from_secs(3))] {
            round_trip(&LaunchOptions::new(
                Mode::ExecSync {
                    process: ExecProcess::Args(vec!["true".into()]),
                    timeout,
                    output_limit: DEFAULT_OUTPUT_LIMIT,
                },
                "c1",
                runc(),
            ));
        }
    }

    #[test]
    fn the_monitor_cgroup_must_be_absolute() {
        for bad in ["crius", "/", "/a/../b"] {
            let line = format!("container --id c1 --bundle /b --exit-file /e --cgroup {bad}");
            assert!(run(&line).is_err(), "{bad} accepted");
        }
        let opts = run("container --id c1 --bundle /b --exit-file /e --cgroup /m/n").unwrap();
        assert_eq!(opts.cgroup.as_deref(), Some("/m/n"));
    }

    #[test]
    fn container_with_defaults() {
        let opts = run("container --id c1 --bundle /b --exit-file /e").unwrap();
        assert_eq!(
            opts.mode,
            Mode::Container {
                bundle: "/b".into()
            }
        );
        assert_eq!(opts.runtime.path, PathBuf::from("crius"));
        assert_eq!(opts.runtime.args, vec![OsString::from("oci")]);
        assert_eq!(opts.sync_fd, 1);
        assert_eq!(opts.max_log_line(), 16384);
        assert!(!opts.terminal && !opts.stdin);
    }

    #[test]
    fn container_with_everything() {
        let opts = run(
            "container --id=c1 --bundle /b --exit-file /e --runtime /usr/bin/runc \
             --runtime-root /r --log-path /l --log-max-line 10 --attach-socket /a \
             --control-socket /c --terminal --stdin --stdin-once --sync-fd 5",
        )
        .unwrap();
        assert_eq!(opts.runtime.path, PathBuf::from("/usr/bin/runc"));
        assert!(opts.runtime.args.is_empty());
        assert_eq!(opts.runtime.root, Some("/r".into()));
        assert_eq!(opts.max_log_line(), 10);
        assert_eq!(opts.sync_fd, 5);
        assert!(opts.terminal && opts.stdin && opts.stdin_once);
    }

    #[test]
    fn exec_sync_with_a_command() {
        let opts = run("exec-sync --id c1 --timeout 3 -- sh -c true").unwrap();
        assert_eq!(
            opts.mode,
            Mode::ExecSync {
                process: ExecProcess::Args(vec!["sh".into(), "-c".into(), "true".into()]),
                timeout: Some(Duration::from_secs(3)),
                output_limit: 16 << 20,
            }
        );
        let opts = run("exec-sync --id c1 --timeout 0 --process /p.json").unwrap();
        assert!(matches!(opts.mode, Mode::ExecSync { timeout: None, .. }));
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(run("container --id c1 --exit-file /e").is_err());
        assert!(run("container --bundle /b --exit-file /e").is_err());
        assert!(run("container --id c1 --bundle /b").is_err());
        assert!(run("exec --id c1 --exit-file /e").is_err());
        assert!(run("exec --id c1 --exit-file /e --process /p -- ls").is_err());
        assert!(run("exec-sync --id c1 --terminal -- ls").is_err());
        assert!(run("container --id c1 --bundle /b --exit-file /e --stdin-once").is_err());
        assert!(run("container --id c1 --bundle /b --exit-file /e --bogus 1").is_err());
        assert!(run("container --id c1 --bundle /b --exit-file /e --log-max-line x").is_err());
        assert!(run("container --id c1 --bundle /b --exit-file /e --log-max-line 0").is_err());
        assert!(run("frobnicate --id c1").is_err());
        assert!(matches!(
            parse([OsString::from("--help")]),
            Ok(Parsed::Help)
        ));
    }
}
