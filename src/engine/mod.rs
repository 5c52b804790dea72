//! The pod and container state the RuntimeService works on: the in-memory tables, the name
//! reservations, the records on disk, and the paths and handlers every lifecycle step needs.
//!
//! The lifecycle steps themselves live in `sandbox/` and `container/`; they take `&Engine`.
//! Locking: the tables are behind short-held std mutexes; each sandbox and container also has
//! an async `op` lock that serialises lifecycle calls on that one object (a stop racing a
//! remove), while calls on different objects run in parallel. Only the lifecycle functions of
//! `sandbox/` and `container/` take it (docs/architecture.md, "Pods and containers").

mod error;
pub mod features;
mod paths;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use error::PodError;
pub use features::HandlerFeatures;
pub use paths::Paths;

use crate::config::Config;
use crate::config::systemd_booted;
use crate::image::ImageManager;
use crate::libcontainer::cgroups::Driver;
use crate::network::cni::Cni;
use crate::oci::SpecOptions;
use crate::oci_runtime::OciRuntime;
use crate::store::{ContainerRecord, Kind, SandboxRecord, StateStore};

/// One pod sandbox.
#[derive(Debug)]
pub struct Sandbox {
    pub id: String,
    record: Mutex<SandboxRecord>,
    /// Serialises lifecycle calls on this sandbox.
    pub op: tokio::sync::Mutex<()>,
}

/// One container.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    record: Mutex<ContainerRecord>,
    pub op: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave a half-made value (every
    // update replaces the whole record), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sandbox {
    pub fn new(record: SandboxRecord) -> Arc<Sandbox> {
        Arc::new(Sandbox {
            id: record.id.clone(),
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> SandboxRecord {
        lock(&self.record).clone()
    }
}

impl Container {
    pub fn new(record: ContainerRecord) -> Arc<Container> {
        Arc::new(Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
        })
    }

    pub fn record(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }

    pub fn sandbox_id(&self) -> String {
        lock(&self.record).sandbox_id.clone()
    }
}

pub struct Engine {
    pub config: Arc<Config>,
    pub images: Arc<ImageManager>,
    pub store: StateStore,
    pub cni: Cni,
    pub paths: Paths,
    /// How specs are generated here: the host's cgroups and LSMs, detected once at start.
    spec_options: SpecOptions,
    /// The cgroup driver, configured or detected at start.
    pub cgroup_driver: Driver,
    /// The parent of pods whose request gives none, for that driver.
    pub default_cgroup_parent: String,
    /// Previous CPU samples, for ContainerStats' CPU rate.
    pub cpu_samples: crate::container::stats::CpuSamples,
    sandboxes: Mutex<BTreeMap<String, Arc<Sandbox>>>,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
    /// Reserved names → the id holding them.
    names: Mutex<HashMap<String, String>>,
    /// Per runtime handler, detected at start.
    features: HashMap<String, HandlerFeatures>,
}

impl Engine {
    pub fn open(config: Arc<Config>, images: Arc<ImageManager>) -> Result<Engine, PodError> {
        let paths = Paths::new(&config)?;
        paths.create()?;
        let store = StateStore::open(&paths.state_dir())?;
        let cni = Cni::new(config.network.plugin_dirs.clone(), paths.cni_cache_dir());
        let booted = systemd_booted();
        let cgroup_driver = config.runtime.cgroup_driver(booted);
        if cgroup_driver == Driver::Systemd && !booted {
            return Err(PodError::FailedPrecondition(
                "runtime.cgroup_manager is \"systemd\", but this host was not booted with systemd (no /run/systemd/system)".into(),
            ));
        }
        let default_cgroup_parent = config.runtime.default_cgroup_parent(cgroup_driver);
        tracing::info!(
            driver = cgroup_driver.as_str(),
            default_parent = default_cgroup_parent.as_str(),
            "cgroup driver"
        );
        let mut engine = Engine {
            config,
            images,
            store,
            cni,
            paths,
            spec_options: SpecOptions::default(),
            cgroup_driver,
            default_cgroup_parent,
            cpu_samples: Default::default(),
            sandboxes: Mutex::new(BTreeMap::new()),
            containers: Mutex::new(BTreeMap::new()),
            names: Mutex::new(HashMap::new()),
            features: HashMap::new(),
        };
        engine.features = engine.detect_features();
        Ok(engine)
    }

    fn detect_features(&self) -> HashMap<String, HandlerFeatures> {
        let idmap_ok = features::idmap_works(&self.paths.root);
        self.handler_names()
            .into_iter()
            .filter_map(|name| {
                let runtime = self.runtime_for(&name).ok()?;
                let builtin = runtime.path == self.paths.exe;
                let f = features::detect(&runtime, builtin, idmap_ok);
                Some((name, f))
            })
            .collect()
    }

    /// What the handler `name` ("" = the default) offers.
    pub fn features(&self, name: &str) -> HandlerFeatures {
        let name = if name.is_empty() {
            self.config.runtime.default_runtime.as_str()
        } else {
            name
        };
        self.features.get(name).copied().unwrap_or_default()
    }

    /// The OCI runtime for a CRI `runtime_handler` ("" = the default one).
    pub fn runtime_for(&self, handler: &str) -> Result<OciRuntime, PodError> {
        let rt = &self.config.runtime;
        let name = if handler.is_empty() {
            rt.default_runtime.as_str()
        } else {
            handler
        };
        let Some(entry) = rt.handler(name) else {
            return Err(PodError::InvalidArgument(format!(
                "unknown runtime handler {name:?}; configured: {}",
                rt.handler_names().join(", ")
            )));
        };
        let (path, mut args) = if entry.path.as_os_str().is_empty() {
            (self.paths.exe.clone(), vec!["oci".to_owned()])
        } else {
            (entry.path.clone(), Vec::new())
        };
        if self.cgroup_driver == Driver::Systemd {
            // runc's global flag: cgroupsPath is "slice:prefix:name", the cgroup a scope unit.
            args.push("--systemd-cgroup".to_owned());
        }
        let root = if entry.root.as_os_str().is_empty() {
            self.paths.runroot.join("runtimes").join(name)
        } else {
            entry.root.clone()
        };
        Ok(OciRuntime {
            name: name.to_owned(),
            path,
            args,
            root,
        })
    }

    /// How specs are generated on this host.
    pub fn spec_options(&self) -> &SpecOptions {
        &self.spec_options
    }

    /// Moves a container monitor out of the daemon's cgroup (see `monitor::cgroup`). A failure
    /// costs only that protection, so it is logged, not returned.
    pub fn adopt_monitor(&self, monitor_pid: i32) {
        let cgroup = &self.config.runtime.monitor_cgroup;
        if cgroup.is_empty() {
            return;
        }
        if let Err(e) = crate::monitor::cgroup::adopt(cgroup, monitor_pid) {
            tracing::warn!(monitor_pid, "moving the monitor into cgroup {cgroup}: {e}");
        }
    }

    /// Names of every configured handler, the default first.
    pub fn handler_names(&self) -> Vec<String> {
        let rt = &self.config.runtime;
        let mut names = vec![rt.default_runtime.clone()];
        names.extend(
            rt.handler_names()
                .into_iter()
                .filter(|n| *n != rt.default_runtime),
        );
        names
    }

    // --- names ---

    /// Reserves `name` for `id`; AlreadyExists names the holder.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), PodError> {
        let mut names = lock(&self.names);
        match names.get(name) {
            Some(holder) if holder != id => Err(PodError::AlreadyExists(format!(
                "the name {name:?} is reserved by {holder}"
            ))),
            _ => {
                names.insert(name.to_owned(), id.to_owned());
                Ok(())
            }
        }
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let mut names = lock(&self.names);
        if names.get(name).is_some_and(|holder| holder == id) {
            names.remove(name);
        }
    }

    // --- sandboxes ---

    pub fn insert_sandbox(&self, sandbox: Arc<Sandbox>) {
        lock(&self.sandboxes).insert(sandbox.id.clone(), sandbox);
    }

    pub fn forget_sandbox(&self, id: &str) {
        self.cpu_samples.forget(id);
        lock(&self.sandboxes).remove(id);
    }

    pub fn sandboxes(&self) -> Vec<Arc<Sandbox>> {
        lock(&self.sandboxes).values().cloned().collect()
    }

    /// By full id or unique id prefix (as crictl allows).
    pub fn sandbox(&self, id: &str) -> Result<Arc<Sandbox>, PodError> {
        find_by_prefix(&lock(&self.sandboxes), id, "pod sandbox")
    }

    /// Updates the record on disk, then in memory (memory never claims more than the disk).
    pub async fn save_sandbox(
        &self,
        sandbox: &Sandbox,
        update: impl FnOnce(&mut SandboxRecord),
    ) -> Result<SandboxRecord, PodError> {
        let mut record = sandbox.record();
        update(&mut record);
        self.store.save(Kind::Sandbox, &record.id, &record).await?;
        *lock(&sandbox.record) = record.clone();
        Ok(record)
    }

    // --- containers ---

    pub fn insert_container(&self, container: Arc<Container>) {
        lock(&self.containers).insert(container.id.clone(), container);
    }

    pub fn forget_container(&self, id: &str) {
        self.cpu_samples.forget(id);
        lock(&self.containers).remove(id);
    }

    pub fn containers(&self) -> Vec<Arc<Container>> {
        lock(&self.containers).values().cloned().collect()
    }

    pub fn container(&self, id: &str) -> Result<Arc<Container>, PodError> {
        find_by_prefix(&lock(&self.containers), id, "container")
    }

    /// Containers of one sandbox.
    pub fn containers_of(&self, sandbox_id: &str) -> Vec<Arc<Container>> {
        self.containers()
            .into_iter()
            .filter(|c| lock(&c.record).sandbox_id == sandbox_id)
            .collect()
    }

    pub async fn save_container(
        &self,
        container: &Container,
        update: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, PodError> {
        let mut record = container.record();
        update(&mut record);
        self.store
            .save(Kind::Container, &record.id, &record)
            .await?;
        *lock(&container.record) = record.clone();
        Ok(record)
    }

    /// Updates only the in-memory record, for facts a restart finds again on its own (an exit
    /// status read from the exit file).
    pub fn cache_container(
        &self,
        container: &Container,
        update: impl FnOnce(&mut ContainerRecord),
    ) {
        update(&mut lock(&container.record));
    }
}

fn find_by_prefix<T: Clone>(
    table: &BTreeMap<String, T>,
    id: &str,
    what: &str,
) -> Result<T, PodError> {
    if id.is_empty() {
        return Err(PodError::InvalidArgument(format!("{what} id is empty")));
    }
    if let Some(found) = table.get(id) {
        return Ok(found.clone());
    }
    let mut matches = table
        .range(id.to_owned()..)
        .take_while(|(k, _)| k.starts_with(id));
    match (matches.next(), matches.next()) {
        (Some((_, found)), None) => Ok(found.clone()),
        (Some(_), Some(_)) => Err(PodError::InvalidArgument(format!(
            "{what} id prefix {id:?} is ambiguous"
        ))),
        (None, _) => Err(PodError::NotFound(format!("{what} {id:?} not found"))),
    }
}

/// Writes `<bundle>/config.json`, with `oomScoreAdj` clamped to what this host lets the runtime
/// set (see [`restrict_oom_score_adj`]).
pub fn write_spec(bundle: &Path, mut spec: oci_spec::runtime::Spec) -> Result<(), PodError> {
    restrict_oom_score_adj(&mut spec);
    let path = bundle.join("config.json");
    let bytes =
        serde_json::to_vec(&spec).map_err(|e| PodError::internal("encoding the OCI spec", e))?;
    std::fs::write(&path, bytes)
        .map_err(|e| PodError::internal(format!("writing {}", path.display()), e))
}

/// Without CAP_SYS_RESOURCE no process may lower its oom_score_adj below its current value, and
/// runc then fails the whole create. As containerd's `restrict_oom_score_adj` does, a lower request
/// is raised to the daemon's own value (which the runtime and container inherit), logged once.
fn restrict_oom_score_adj(spec: &mut oci_spec::runtime::Spec) {
    static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(process) = spec.process_mut() else {
        return;
    };
    let Some(requested) = process.oom_score_adj() else {
        return;
    };
    if caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
    {
        return;
    }
    let Ok(own) = crate::libcontainer::oom_score::read(None) else {
        return;
    };
    if requested < own {
        process.set_oom_score_adj(Some(own));
        if !LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "oom_score_adj {requested} needs CAP_SYS_RESOURCE, which crius lacks: using {own} instead (logged once)"
            );
        }
    }
}

/// A fresh 64-hex id.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve_by_unique_prefix() {
        let table: BTreeMap<String, u8> = [
            ("abc1".to_owned(), 1),
            ("abc2".to_owned(), 2),
            ("b".to_owned(), 3),
        ]
        .into();
        assert_eq!(find_by_prefix(&table, "abc1", "x").unwrap(), 1);
        assert_eq!(find_by_prefix(&table, "b", "x").unwrap(), 3);
        assert!(matches!(
            find_by_prefix(&table, "abc", "x"),
            Err(PodError::InvalidArgument(_))
        ));
        assert!(matches!(
            find_by_prefix(&table, "c", "x"),
            Err(PodError::NotFound(_))
        ));
        assert!(matches!(
            find_by_prefix(&table, "", "x"),
            Err(PodError::InvalidArgument(_))
        ));
        assert_eq!(new_id().len(), 64);
    }
}
