//! Running the real `crius` binary: a generated configuration, root, runroot and socket in a
//! temporary directory, stderr captured to a log file, readiness = a `Version` answer.
//!
//! The daemon never sees `/etc/crius` or `/var/lib/crius`: it always gets `--config`,
//! `--config-dir`, `--root`, `--runroot` and `--listen` pointing into its temporary directory,
//! and its `auth_file` / `certs_dir` point there too unless a test sets them.
//!
//! `CRIUS_E2E_CGROUP_MANAGER` (`cgroupfs`, `systemd`; unset or empty: not set) becomes every
//! daemon's `[runtime] cgroup_manager`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_cri_api::v1::VersionRequest;
use crius_cri_api::v1::image_service_client::ImageServiceClient;
use crius_cri_api::v1::runtime_service_client::RuntimeServiceClient;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::cri::{self, Images};
use crate::pods::TestNetwork;
use crate::registry::TestRegistry;
use crate::util::{tail_of_file, workspace_root};

/// How long [`Crius::start`] waits for the socket to answer `Version`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Crius::stop`] waits for the process to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon binary: `$CRIUS_BIN`, else `<workspace>/target/debug/crius`.
pub fn crius_bin() -> PathBuf {
    std::env::var_os("CRIUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/crius"))
}

/// The daemon binary a tool (`conformance`, `critest-env`) runs: `explicit` (its `--bin`),
/// `$CRIUS_BIN`, `$CARGO_TARGET_DIR/debug/crius`, `<workspace>/target/debug/crius`; an error
/// naming the build when it does not exist.
pub fn chosen_crius_bin(explicit: Option<&Path>) -> Result<PathBuf> {
    let bin = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CRIUS_BIN").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("debug/crius"))
        })
        .unwrap_or_else(|| workspace_root().join("target/debug/crius"));
    if !bin.exists() {
        bail!(
            "{} does not exist: cargo build -p crius -p crius-monitor --bins (or pass --bin)",
            bin.display()
        );
    }
    Ok(bin)
}

/// `[image.registries."<host>"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryEntry {
    pub mirrors: Vec<String>,
    pub insecure: bool,
}

/// Configuration of a [`Crius`] to start.
#[derive(Debug, Clone)]
pub struct CriusBuilder {
    log_level: String,
    registries: BTreeMap<String, RegistryEntry>,
    unqualified_search_registries: Option<Vec<String>>,
    max_concurrent_downloads: Option<u32>,
    pull_timeout: Option<String>,
    auth_file: Option<PathBuf>,
    certs_dir: Option<PathBuf>,
    auth_entries: BTreeMap<String, (String, String)>,
    raw_auth_entries: BTreeMap<String, serde_json::Value>,
    cas: Vec<(String, PathBuf)>,
    drop_ins: Vec<(String, String)>,
    extra_args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    bin: Option<PathBuf>,
    network: Option<(PathBuf, Vec<PathBuf>)>,
    config_values: Vec<(String, toml::Value)>,
}

impl Default for CriusBuilder {
    fn default() -> Self {
        CriusBuilder {
            log_level: std::env::var("CRIUS_E2E_LOG_LEVEL").unwrap_or_else(|_| "debug".to_string()),
            registries: BTreeMap::new(),
            unqualified_search_registries: None,
            max_concurrent_downloads: None,
            pull_timeout: None,
            auth_file: None,
            certs_dir: None,
            auth_entries: BTreeMap::new(),
            raw_auth_entries: BTreeMap::new(),
            cas: Vec::new(),
            drop_ins: Vec::new(),
            extra_args: Vec::new(),
            envs: Vec::new(),
            bin: None,
            network: None,
            // A test's own config_value calls come later and win.
            config_values: default_config_values(crate::cgroups::cgroup_manager()),
        }
    }
}

/// The config values every builder starts with: `runtime.cgroup_manager` = `manager`
/// (`$CRIUS_E2E_CGROUP_MANAGER`) when given.
fn default_config_values(manager: Option<String>) -> Vec<(String, toml::Value)> {
    manager
        .map(|m| ("runtime.cgroup_manager".to_string(), toml::Value::from(m)))
        .into_iter()
        .collect()
}

impl CriusBuilder {
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// Sets the whole `[image.registries."<host>"]` table.
    pub fn registry(mut self, host: &str, entry: RegistryEntry) -> Self {
        self.registries.insert(host.to_string(), entry);
        self
    }

    /// `insecure = true` for `host` (plain HTTP / unverified TLS).
    pub fn insecure(mut self, host: &str) -> Self {
        self.registries
            .entry(host.to_string())
            .or_default()
            .insecure = true;
        self
    }

    /// Appends `mirror` to `host`'s mirrors.
    pub fn mirror(mut self, host: &str, mirror: &str) -> Self {
        self.registries
            .entry(host.to_string())
            .or_default()
            .mirrors
            .push(mirror.to_string());
        self
    }

    pub fn unqualified_search_registries(mut self, registries: &[&str]) -> Self {
        self.unqualified_search_registries =
            Some(registries.iter().map(|r| r.to_string()).collect());
        self
    }

    pub fn max_concurrent_downloads(mut self, n: u32) -> Self {
        self.max_concurrent_downloads = Some(n);
        self
    }

    /// `pull_timeout`, e.g. `"30s"`.
    pub fn pull_timeout(mut self, timeout: &str) -> Self {
        self.pull_timeout = Some(timeout.to_string());
        self
    }

    /// Uses this `auth_file` instead of `<tmp>/auth.json`.
    pub fn auth_file(mut self, path: &Path) -> Self {
        self.auth_file = Some(path.to_path_buf());
        self
    }

    /// Uses this `certs_dir` instead of `<tmp>/certs.d`.
    pub fn certs_dir(mut self, path: &Path) -> Self {
        self.certs_dir = Some(path.to_path_buf());
        self
    }

    /// Adds `{"auths": {"<host>": {"auth": base64(user:password)}}}` to the auth file.
    pub fn auth_entry(mut self, host: &str, user: &str, password: &str) -> Self {
        self.auth_entries
            .insert(host.to_string(), (user.to_string(), password.to_string()));
        self
    }

    /// Adds `{"auths": {"<host>": <entry>}}` to the auth file as given, e.g.
    /// `{"identitytoken": "..."}` or `{"registrytoken": "..."}`; replaces an
    /// [`CriusBuilder::auth_entry`] for the same host.
    pub fn auth_file_entry(mut self, host: &str, entry: serde_json::Value) -> Self {
        self.raw_auth_entries.insert(host.to_string(), entry);
        self
    }

    /// Installs `ca` as `<certs_dir>/<host>/ca.crt`.
    pub fn ca(mut self, host: &str, ca: &Path) -> Self {
        self.cas.push((host.to_string(), ca.to_path_buf()));
        self
    }

    /// Trusts `registry`'s CA (TLS modes) via the certs dir.
    pub fn trust(self, registry: &TestRegistry) -> Self {
        match registry.ca_cert() {
            Some(ca) => {
                let ca = ca.to_path_buf();
                self.ca(&registry.host(), &ca)
            }
            None => self,
        }
    }

    /// A file `name` with `contents` in the drop-in config directory.
    pub fn drop_in(mut self, name: &str, contents: &str) -> Self {
        self.drop_ins.push((name.to_string(), contents.to_string()));
        self
    }

    /// Runs this binary instead of [`crius_bin`].
    pub fn bin(mut self, bin: &Path) -> Self {
        self.bin = Some(bin.to_path_buf());
        self
    }

    /// Extra command line arguments (after the generated ones).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// An environment variable for the daemon (e.g. `RUST_LOG`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// `[network] network_dir` and `plugin_dirs` of `network`. The network must outlive the
    /// daemon.
    pub fn network(mut self, network: &TestNetwork) -> Self {
        self.network = Some((network.network_dir(), network.plugin_dirs()));
        self
    }

    /// Sets `dotted_key` (plain segments: `"network.network_dir"`, no quoted keys) in the main
    /// config file, creating tables on the way; applied last, so it wins over the generated
    /// values.
    pub fn config_value(mut self, dotted_key: &str, value: impl Into<toml::Value>) -> Self {
        self.config_values
            .push((dotted_key.to_string(), value.into()));
        self
    }

    /// Writes the configuration into a new temporary directory without starting anything.
    pub fn prepare(self) -> Result<Crius> {
        Crius::prepare(self)
    }

    /// Writes the configuration and starts the daemon, waiting until it answers `Version`.
    pub async fn start(self) -> Result<Crius> {
        let mut crius = Crius::prepare(self)?;
        crius.spawn().await?;
        Ok(crius)
    }

    fn config_toml(&self, paths: &Paths) -> Result<String> {
        use toml::{Table, Value};
        let mut root = Table::new();
        root.insert("root".into(), Value::from(path_string(&paths.root)?));
        root.insert("runroot".into(), Value::from(path_string(&paths.runroot)?));
        root.insert("log_level".into(), Value::from(self.log_level.clone()));
        let mut api = Table::new();
        api.insert("listen".into(), Value::from(path_string(&paths.socket)?));
        root.insert("api".into(), Value::Table(api));
        let mut image = Table::new();
        if let Some(registries) = &self.unqualified_search_registries {
            image.insert(
                "unqualified_search_registries".into(),
                Value::from(registries.clone()),
            );
        }
        if let Some(n) = self.max_concurrent_downloads {
            image.insert("max_concurrent_downloads".into(), Value::from(i64::from(n)));
        }
        if let Some(timeout) = &self.pull_timeout {
            image.insert("pull_timeout".into(), Value::from(timeout.clone()));
        }
        image.insert(
            "auth_file".into(),
            Value::from(path_string(&paths.auth_file)?),
        );
        image.insert(
            "certs_dir".into(),
            Value::from(path_string(&paths.certs_dir)?),
        );
        if !self.registries.is_empty() {
            let mut registries = Table::new();
            for (host, entry) in &self.registries {
                let mut table = Table::new();
                table.insert("mirrors".into(), Value::from(entry.mirrors.clone()));
                table.insert("insecure".into(), Value::from(entry.insecure));
                registries.insert(host.clone(), Value::Table(table));
            }
            image.insert("registries".into(), Value::Table(registries));
        }
        root.insert("image".into(), Value::Table(image));
        if let Some((network_dir, plugin_dirs)) = &self.network {
            let mut network = Table::new();
            network.insert("network_dir".into(), Value::from(path_string(network_dir)?));
            let dirs = plugin_dirs
                .iter()
                .map(|d| path_string(d))
                .collect::<Result<Vec<_>>>()?;
            network.insert("plugin_dirs".into(), Value::from(dirs));
            root.insert("network".into(), Value::Table(network));
        }
        for (key, value) in &self.config_values {
            set_dotted(&mut root, key, value.clone())?;
        }
        Ok(toml::to_string(&root)?)
    }
}

/// `table[a][b][c] = value` for `key` `"a.b.c"`, creating the tables `a` and `a.b`.
fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut segments: Vec<&str> = key.split('.').collect();
    let last = segments
        .pop()
        .filter(|s| !s.is_empty())
        .with_context(|| format!("empty config key {key:?}"))?;
    let mut current = table;
    for segment in segments {
        current = current
            .entry(segment)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("config key {key:?}: {segment:?} is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

fn path_string(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("non-UTF-8 path {}", path.display()))
}

/// The files and directories of one daemon instance.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config: PathBuf,
    pub config_dir: PathBuf,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub socket: PathBuf,
    pub auth_file: PathBuf,
    pub certs_dir: PathBuf,
    pub log: PathBuf,
}

/// A crius daemon (running or not) with its own temporary state.
pub struct Crius {
    bin: PathBuf,
    paths: Paths,
    extra_args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    child: Option<Child>,
    // Last field: removed after the child is gone.
    dir: TempDir,
}

impl std::fmt::Debug for Crius {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crius")
            .field("dir", &self.dir.path())
            .field("pid", &self.pid())
            .finish()
    }
}

impl Crius {
    pub fn builder() -> CriusBuilder {
        CriusBuilder::default()
    }

    /// Starts a daemon with the default test configuration.
    pub async fn start() -> Result<Crius> {
        Crius::builder().start().await
    }

    fn prepare(builder: CriusBuilder) -> Result<Crius> {
        // Short prefix: the socket path must stay under the 108-byte sun_path limit.
        let dir = tempfile::Builder::new()
            .prefix("crius-e2e-")
            .tempdir()
            .context("creating the daemon's temporary directory")?;
        let base = dir.path();
        let paths = Paths {
            config: base.join("crius.toml"),
            config_dir: base.join("crius.d"),
            root: base.join("root"),
            runroot: base.join("run"),
            socket: base.join("run/crius.sock"),
            auth_file: builder
                .auth_file
                .clone()
                .unwrap_or_else(|| base.join("auth.json")),
            certs_dir: builder
                .certs_dir
                .clone()
                .unwrap_or_else(|| base.join("certs.d")),
            log: base.join("crius.log"),
        };
        std::fs::create_dir_all(&paths.config_dir)?;
        if builder.certs_dir.is_none() {
            std::fs::create_dir_all(&paths.certs_dir)?;
        }
        for (host, ca) in &builder.cas {
            let dir = paths.certs_dir.join(host);
            std::fs::create_dir_all(&dir)?;
            std::fs::copy(ca, dir.join("ca.crt"))
                .with_context(|| format!("copying {}", ca.display()))?;
        }
        if !builder.auth_entries.is_empty() || !builder.raw_auth_entries.is_empty() {
            let mut auths = auth_entries_json(&builder.auth_entries);
            auths.extend(builder.raw_auth_entries.clone());
            write_auth_json(&paths.auth_file, auths)?;
        }
        for (name, contents) in &builder.drop_ins {
            std::fs::write(paths.config_dir.join(name), contents)?;
        }
        std::fs::write(&paths.config, builder.config_toml(&paths)?)
            .with_context(|| format!("writing {}", paths.config.display()))?;
        Ok(Crius {
            bin: builder.bin.clone().unwrap_or_else(crius_bin),
            paths,
            extra_args: builder.extra_args,
            envs: builder.envs,
            child: None,
            dir,
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// `--root`: persistent state (images under `<root>/images/`).
    pub fn root(&self) -> &Path {
        &self.paths.root
    }

    pub fn runroot(&self) -> &Path {
        &self.paths.runroot
    }

    pub fn socket(&self) -> &Path {
        &self.paths.socket
    }

    pub fn config_path(&self) -> &Path {
        &self.paths.config
    }

    pub fn config_dir(&self) -> &Path {
        &self.paths.config_dir
    }

    pub fn certs_dir(&self) -> &Path {
        &self.paths.certs_dir
    }

    pub fn auth_file(&self) -> &Path {
        &self.paths.auth_file
    }

    /// The daemon's temporary base directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `<root>/images/layers`: one directory per unpacked layer.
    pub fn layers_dir(&self) -> PathBuf {
        self.paths.root.join("images/layers")
    }

    /// Entries of [`Crius::layers_dir`] (empty when it does not exist).
    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.layers_dir())
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    }

    /// The captured stderr (and stdout) of every run of this daemon.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.paths.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.paths.log
    }

    /// The binary this daemon runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The generated command line arguments (config, drop-in dir, root, runroot, socket).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--config".into(),
            self.paths.config.clone().into(),
            "--config-dir".into(),
            self.paths.config_dir.clone().into(),
            "--root".into(),
            self.paths.root.clone().into(),
            "--runroot".into(),
            self.paths.runroot.clone().into(),
            "--listen".into(),
            self.paths.socket.clone().into(),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// `crius <args>` for running a variant by hand (not started, stdio inherited).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(self.args());
        command
    }

    /// Starts the process (if not running) and waits for readiness.
    pub async fn spawn(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let bin = self.bin.clone();
        if !bin.exists() {
            bail!(
                "{} does not exist: build it (cargo build --bin crius) or set CRIUS_BIN",
                bin.display()
            );
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.paths.log)
            .with_context(|| format!("opening {}", self.paths.log.display()))?;
        let child = Command::new(&bin)
            .args(self.args())
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "crius exited during start-up with {status}; log:\n{}",
                    tail_of_file(&self.paths.log, 8000)
                );
            }
            if self.paths.socket.exists() {
                let probe = async {
                    let mut client = cri::runtime_client(&self.paths.socket).await?;
                    client
                        .version(VersionRequest {
                            version: "v1".into(),
                        })
                        .await?;
                    anyhow::Ok(())
                };
                if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "crius did not answer Version on {} within {READY_TIMEOUT:?}; log:\n{}",
                    self.paths.socket.display(),
                    tail_of_file(&self.paths.log, 8000)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub async fn runtime_client(&self) -> Result<RuntimeServiceClient<Channel>> {
        cri::runtime_client(&self.paths.socket).await
    }

    pub async fn image_client(&self) -> Result<ImageServiceClient<Channel>> {
        cri::image_client(&self.paths.socket).await
    }

    /// The image RPC short-hands of [`Images`].
    pub async fn images(&self) -> Result<Images> {
        Images::connect(&self.paths.socket).await
    }

    /// SIGTERM, then waits (up to [`STOP_TIMEOUT`]) for the exit status.
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        self.signal_and_wait(Signal::SIGTERM, STOP_TIMEOUT).await
    }

    /// SIGKILL, then waits for the exit status.
    pub async fn kill9(&mut self) -> Result<ExitStatus> {
        self.signal_and_wait(Signal::SIGKILL, STOP_TIMEOUT).await
    }

    /// Stops (SIGTERM) the daemon if it is running and starts it again with the same root,
    /// runroot, socket and configuration.
    pub async fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            let status = self.stop().await?;
            if !status.success() {
                bail!("crius exited with {status} on SIGTERM");
            }
        }
        self.child = None;
        self.spawn().await
    }

    async fn signal_and_wait(&mut self, signal: Signal, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("crius is not running")?;
        let pid = Pid::from_raw(i32::try_from(child.id())?);
        if child.try_wait()?.is_none() {
            kill(pid, signal).with_context(|| format!("sending {signal} to crius ({pid})"))?;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("crius ({pid}) did not exit within {timeout:?} after {signal}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// On a host whose `/` is a shared mount (systemd), the daemon bind-mounts its pin
    /// directory `<runroot>/ns` onto itself (private) and keeps it for its lifetime; once the
    /// daemon is gone the test removes it, or the temporary directory could not be deleted.
    fn unmount_ns_dir(&self) {
        let ns_dir = self.paths.runroot.join("ns");
        let mounted = crate::pods::leak_check::mounts_under(&[&ns_dir])
            .iter()
            .any(|m| m.mount_point == ns_dir);
        if mounted {
            let _ = nix::mount::umount2(&ns_dir, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL to this child's PID only.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Crius {
    fn drop(&mut self) {
        self.kill_child();
        self.unmount_ns_dir();
        if std::thread::panicking() {
            eprintln!(
                "--- crius log {} (tail) ---\n{}",
                self.paths.log.display(),
                tail_of_file(&self.paths.log, 16000)
            );
        }
    }
}

/// Writes a docker `config.json`-style auth file.
pub fn write_auth_file(path: &Path, entries: &BTreeMap<String, (String, String)>) -> Result<()> {
    write_auth_json(path, auth_entries_json(entries))
}

/// `{"<host>": {"auth": base64(user:password)}}` for each entry.
fn auth_entries_json(
    entries: &BTreeMap<String, (String, String)>,
) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine as _;
    entries
        .iter()
        .map(|(host, (user, password))| {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            (host.clone(), serde_json::json!({ "auth": auth }))
        })
        .collect()
}

/// Writes `{"auths": <auths>}` to `path`.
fn write_auth_json(path: &Path, auths: serde_json::Map<String, serde_json::Value>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&serde_json::json!({ "auths": auths }))?,
    )
    .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_config_values_land_in_the_main_file() {
        let network = TestNetwork::new().unwrap();
        let crius = Crius::builder()
            .network(&network)
            .config_value("log_level", "trace")
            .config_value("network.plugin_dirs", vec!["/opt/cni/bin"])
            .config_value("image.registries.localhost.insecure", true)
            .prepare()
            .unwrap();
        let text = std::fs::read_to_string(crius.config_path()).unwrap();
        let config: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(config["log_level"].as_str(), Some("trace"));
        assert_eq!(
            config["network"]["network_dir"].as_str(),
            network.network_dir().to_str()
        );
        assert_eq!(
            config["network"]["plugin_dirs"],
            toml::Value::from(vec!["/opt/cni/bin"])
        );
        assert_eq!(
            config["image"]["registries"]["localhost"]["insecure"].as_bool(),
            Some(true)
        );
        // Default builders write no [network] table.
        let plain = Crius::builder().prepare().unwrap();
        let text = std::fs::read_to_string(plain.config_path()).unwrap();
        assert!(!text.contains("[network]"), "{text}");
    }

    #[test]
    fn the_cgroup_manager_setting_lands_in_the_config_unless_a_test_overrides_it() {
        let read = |builder: CriusBuilder| {
            let crius = builder.prepare().unwrap();
            let text = std::fs::read_to_string(crius.config_path()).unwrap();
            let config: toml::Table = toml::from_str(&text).unwrap();
            config
                .get("runtime")
                .and_then(|r| r.get("cgroup_manager"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        };
        let with = |manager: Option<&str>| CriusBuilder {
            config_values: default_config_values(manager.map(str::to_string)),
            ..CriusBuilder::default()
        };
        assert_eq!(read(with(Some("systemd"))).as_deref(), Some("systemd"));
        assert_eq!(
            read(with(Some("systemd")).config_value("runtime.cgroup_manager", "cgroupfs"))
                .as_deref(),
            Some("cgroupfs")
        );
        assert_eq!(read(with(None)), None);
    }

    #[test]
    fn config_value_through_a_scalar_fails() {
        let result = Crius::builder().config_value("log_level.x", 1).prepare();
        assert!(result.is_err());
    }
}
