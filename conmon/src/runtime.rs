//! Command lines for the OCI runtime (runc's CLI: `crius oci`, runc and crun all take it).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crius_monitor_proto::{ExecProcess, Runtime};

/// The runtime's commands the monitor runs (the [`Runtime`] itself is part of the launch
/// options, defined in `crius_monitor_proto`).
pub trait RuntimeCommands {
    /// `create --bundle B --pid-file F [--console-socket S] ID`
    fn create(&self, id: &str, bundle: &Path, pid_file: &Path, console: Option<&Path>) -> Command;

    /// `exec --detach --pid-file F [--console-socket S [--tty]] (--process P ID | ID ARGS…)`:
    /// detached, so the process is reparented to the monitor (a subreaper) and reaped there.
    fn exec(
        &self,
        id: &str,
        process: &ExecProcess,
        pid_file: &Path,
        console: Option<&Path>,
    ) -> Command;
}

/// `<path> <args…> [--root R] <subcommand>`
fn command(runtime: &Runtime, subcommand: &str) -> Command {
    let mut cmd = Command::new(&runtime.path);
    cmd.args(&runtime.args);
    if let Some(root) = &runtime.root {
        cmd.arg("--root").arg(root);
    }
    cmd.arg(subcommand);
    cmd
}

impl RuntimeCommands for Runtime {
    fn create(&self, id: &str, bundle: &Path, pid_file: &Path, console: Option<&Path>) -> Command {
        let mut cmd = command(self, "create");
        cmd.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(socket) = console {
            cmd.arg("--console-socket").arg(socket);
        }
        cmd.arg(id);
        cmd
    }

    fn exec(
        &self,
        id: &str,
        process: &ExecProcess,
        pid_file: &Path,
        console: Option<&Path>,
    ) -> Command {
        let mut cmd = command(self, "exec");
        cmd.arg("--detach").arg("--pid-file").arg(pid_file);
        if let Some(socket) = console {
            cmd.arg("--console-socket").arg(socket);
            if matches!(process, ExecProcess::Args(_)) {
                cmd.arg("--tty");
            }
        }
        match process {
            ExecProcess::Spec(path) => {
                cmd.arg("--process").arg(path).arg(id);
            }
            ExecProcess::Args(args) => {
                cmd.arg(id).args(args);
            }
        }
        cmd
    }
}

pub fn read_pid_file(path: &Path) -> io::Result<i32> {
    let text = fs::read_to_string(path)?;
    text.trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| io::Error::other(format!("bad pid {:?} in {}", text.trim(), path.display())))
}

/// A private directory for the pid file and the console socket, removed when dropped. It lives in
/// the temporary directory, not beside the bundle, to keep the socket path under the 108 bytes
/// `sun_path` holds.
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn create() -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("crius-monitor-{}-{nanos}", std::process::id()));
        fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(WorkDir(path))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn create_and_exec_command_lines() {
        let rt = Runtime {
            path: "crius".into(),
            args: vec!["oci".into()],
            root: Some("/run/r".into()),
        };
        let create = rt.create(
            "c1",
            Path::new("/b"),
            Path::new("/p"),
            Some(Path::new("/s")),
        );
        assert_eq!(
            args(&create),
            "crius oci --root /run/r create --bundle /b --pid-file /p --console-socket /s c1"
                .split(' ')
                .collect::<Vec<_>>()
        );
        let exec = rt.exec(
            "c1",
            &ExecProcess::Args(vec!["ls".into(), "-l".into()]),
            Path::new("/p"),
            None,
        );
        assert_eq!(
            args(&exec),
            "crius oci --root /run/r exec --detach --pid-file /p c1 ls -l"
                .split(' ')
                .collect::<Vec<_>>()
        );
        let runc = Runtime {
            path: "runc".into(),
            args: vec![],
            root: None,
        };
        let exec = runc.exec(
            "c1",
            &ExecProcess::Spec("/proc.json".into()),
            Path::new("/p"),
            Some(Path::new("/s")),
        );
        assert_eq!(
            args(&exec),
            "runc exec --detach --pid-file /p --console-socket /s --process /proc.json c1"
                .split(' ')
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn pid_file() {
        let dir = WorkDir::create().unwrap();
        let path = dir.join("pid");
        fs::write(&path, "1234").unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), 1234);
        fs::write(&path, "x").unwrap();
        assert!(read_pid_file(&path).is_err());
        let root = dir.0.clone();
        drop(dir);
        assert!(!root.exists());
    }
}
