//! Faults on demand for the lifecycle tests: a CNI plugin and an OCI runtime that are small
//! shell scripts in front of the real ones, sleeping or failing while a flag file next to them
//! says so.
//!
//! - [`FaultyCni`]: a plugin `crius-e2e-faulty` that runs the real `bridge` plugin. With
//!   `sleep-<COMMAND>` holding seconds it sleeps first; with `fail-<COMMAND>` present it fails
//!   (an ADD still does the bridge's work first, so that a DEL is really owed).
//! - [`SlowRuntime`]: a runtime handler whose `path` is a script that runs `crius oci`. With
//!   `sleep-<subcommand>` it sleeps first, with `fail-<subcommand>` it fails (for `create`,
//!   `start` and `delete`); with `stall-create` the create stalls half-way — its init made, in
//!   its cgroup, the runtime's state not yet written — through `crius oci`'s fault point
//!   `CRIUS_OCI_STALL_CREATE`.
//!
//! Both must outlive the daemon's pods (the scripts are their plugin and runtime), and a test
//! should [`clear`](FaultyCni::clear) them before its cleanup removes those pods.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use super::network::{PLUGIN_DIR, TestNetwork};

/// The plugin type of [`FaultyCni`].
pub const FAULTY_PLUGIN: &str = "crius-e2e-faulty";

/// Flag files in a directory of their own.
struct Flags {
    dir: TempDir,
}

impl Flags {
    fn new(prefix: &str) -> Result<Flags> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        Ok(Flags { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn set(&self, name: &str, contents: Option<&str>) -> Result<()> {
        let path = self.dir.path().join(name);
        match contents {
            Some(text) => {
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
            }
            None => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
            },
        }
    }

    /// Removes every flag: no more sleeps or failures.
    fn clear(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("sleep-") || name.starts_with("fail-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn write_script(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }
}

/// The CNI plugin script; `$dir` is its own directory, where the flags are.
fn faulty_plugin_script() -> String {
    format!(
        r#"#!/bin/sh
# crius e2e: the real bridge plugin, slowed down or failing while a flag file says so.
dir=$(dirname "$0")
if [ -f "$dir/sleep-$CNI_COMMAND" ]; then sleep "$(cat "$dir/sleep-$CNI_COMMAND")"; fi
if [ -f "$dir/fail-$CNI_COMMAND" ]; then
  if [ "$CNI_COMMAND" = ADD ]; then
    conf=$(cat)
    printf '%s' "$conf" | {bridge} >/dev/null 2>&1
  fi
  printf '{{"cniVersion":"1.0.0","code":999,"msg":"crius-e2e: %s fails by the test flag"}}\n' "$CNI_COMMAND"
  exit 1
fi
exec {bridge}
"#,
        bridge = Path::new(PLUGIN_DIR).join("bridge").display()
    )
}

/// A plugin directory holding [`FAULTY_PLUGIN`] and its flags.
pub struct FaultyCni {
    flags: Flags,
}

impl FaultyCni {
    pub fn new() -> Result<FaultyCni> {
        let flags = Flags::new("crius-e2e-cni-")?;
        flags.write_script(FAULTY_PLUGIN, &faulty_plugin_script())?;
        Ok(FaultyCni { flags })
    }

    /// The daemon's `network.plugin_dirs`: this one first, then the real plugins.
    pub fn plugin_dirs(&self) -> Vec<String> {
        vec![
            self.flags.path().display().to_string(),
            PLUGIN_DIR.to_string(),
        ]
    }

    /// Rewrites `network`'s conflist so that its bridge goes through this plugin. The daemon
    /// reads the configuration at each RunPodSandbox, so this works on a running one too.
    pub fn take_over(&self, network: &TestNetwork) -> Result<()> {
        let mut conflist: Value = network.conflist();
        conflist["plugins"][0]["type"] = Value::from(FAULTY_PLUGIN);
        std::fs::write(
            network.conflist_path(),
            serde_json::to_vec_pretty(&conflist)?,
        )?;
        Ok(())
    }

    /// `command` (`ADD`, `DEL`, …) sleeps this long first (`None`: not at all).
    pub fn sleep(&self, command: &str, seconds: Option<f64>) -> Result<()> {
        self.flags.set(
            &format!("sleep-{command}"),
            seconds.map(|s| s.to_string()).as_deref(),
        )
    }

    /// `command` fails (`true`) or works.
    pub fn fail(&self, command: &str, fail: bool) -> Result<()> {
        self.flags
            .set(&format!("fail-{command}"), fail.then_some("1"))
    }
    /// Every command works again, at once.
    pub fn clear(&self) {
        self.flags.clear();
    }
}

/// A runtime handler script in front of `crius oci`.
pub struct SlowRuntime {
    flags: Flags,
    path: PathBuf,
}

impl SlowRuntime {
    /// `crius` is the binary whose `oci` subcommand the script runs.
    pub fn new(crius: &Path) -> Result<SlowRuntime> {
        let flags = Flags::new("crius-e2e-rt-")?;
        let script = format!(
            r#"#!/bin/sh
# crius e2e: crius oci, slowed down or failing while a flag file says so.
dir=$(dirname "$0")
for arg in "$@"; do
  case "$arg" in
    create|start|delete)
      if [ -f "$dir/sleep-$arg" ]; then sleep "$(cat "$dir/sleep-$arg")"; fi
      if [ -f "$dir/fail-$arg" ]; then echo "crius-e2e: $arg fails by the test flag" >&2; exit 1; fi
      if [ "$arg" = create ] && [ -f "$dir/stall-create" ]; then
        CRIUS_OCI_STALL_CREATE=$(cat "$dir/stall-create"); export CRIUS_OCI_STALL_CREATE
      fi
      break;;
  esac
done
exec {crius} oci "$@"
"#,
            crius = crius.display()
        );
        let path = flags.write_script("runtime", &script)?;
        Ok(SlowRuntime { flags, path })
    }

    /// The handler's `path`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `subcommand` (`create`, `start`, `delete`) sleeps this long first (`None`: not at all).
    pub fn sleep(&self, subcommand: &str, seconds: Option<f64>) -> Result<()> {
        self.flags.set(
            &format!("sleep-{subcommand}"),
            seconds.map(|s| s.to_string()).as_deref(),
        )
    }

    /// `create` stalls this long after its init is made, before the runtime's state is
    /// written (`None`: not at all).
    pub fn stall_create(&self, seconds: Option<f64>) -> Result<()> {
        self.flags
            .set("stall-create", seconds.map(|s| s.to_string()).as_deref())
    }

    /// `subcommand` fails (`true`) or works.
    pub fn fail(&self, subcommand: &str, fail: bool) -> Result<()> {
        self.flags
            .set(&format!("fail-{subcommand}"), fail.then_some("1"))
    }
    /// Every subcommand works again, at once.
    pub fn clear(&self) {
        self.flags.clear();
    }
}
