//! The pod and container state the RuntimeService works on: the in-memory tables, the name
//! reservations, the records on disk and the paths every lifecycle step needs — and, beside
//! them, the subsystems those steps use (`images`, `cni`, `runtimes`), held here so one `&Engine`
//! reaches them. Engine itself does no lifecycle work: handlers and features are
//! `crate::runtimes`, layers `crate::layers`, monitors `crate::monitor`.
//!
//! The lifecycle steps themselves live in `sandbox/` and `container/`; they take `&Engine`.
//! Locking: the tables are behind short-held std mutexes; each sandbox and container also has
//! an async `op` lock that serialises lifecycle calls on that one object (a stop racing a
//! remove), while calls on different objects run in parallel. Only the lifecycle functions of
//! `sandbox/` and `container/` take it (docs/architecture.md, "Pods and containers").

mod cpu_samples;
mod deferred;
mod error;
mod paths;
mod pause_bin;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

pub use cpu_samples::CpuSamples;
pub use deferred::Deferred;
pub use error::PodError;
pub use paths::Paths;

use crate::config::Config;
use crate::events::Events;
use crate::image::ImageManager;
use crate::network::cni::Cni;
use crate::runtimes::Runtimes;
use crate::store::{ContainerRecord, Kind, SandboxRecord, StateStore};
use crate::validate::quote;

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
    /// Its exit was seen and what it no longer needs released (`container::release`); in
    /// memory only: after a restart, RemoveContainer releases again (each step is idempotent).
    pub released: std::sync::atomic::AtomicBool,
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
            released: Default::default(),
        })
    }

    pub fn record(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }
}

pub struct Engine {
    pub config: Arc<Config>,
    pub images: Arc<ImageManager>,
    pub store: StateStore,
    pub cni: Cni,
    pub paths: Paths,
    /// The runtime handlers, the cgroup driver and how specs are generated here.
    pub runtimes: Runtimes,
    /// Previous CPU samples, for ContainerStats' CPU rate.
    pub cpu_samples: CpuSamples,
    /// The container events hub (`GetContainerEvents`); `container::events` publishes.
    pub events: Events,
    /// Removals finished after their reply (`container::remove`).
    pub deferred: Deferred,
    sandboxes: Mutex<BTreeMap<String, Arc<Sandbox>>>,
    containers: Mutex<BTreeMap<String, Arc<Container>>>,
    /// Reserved names → the id holding them.
    names: Mutex<HashMap<String, String>>,
}

impl Engine {
    pub fn open(config: Arc<Config>, images: Arc<ImageManager>) -> Result<Engine, PodError> {
        let paths = Paths::new(&config)?;
        paths.create()?;
        let store = StateStore::open(&paths.state_dir())?;
        let cni = Cni::new(config.network.plugin_dirs.clone(), paths.cni_cache_dir());
        let runtimes = Runtimes::new(&config, &paths.exe, &paths.root)?;
        let events = Events::new(config.runtime.container_events_buffer);
        Ok(Engine {
            config,
            images,
            store,
            cni,
            paths,
            runtimes,
            cpu_samples: Default::default(),
            events,
            deferred: Deferred::default(),
            sandboxes: Mutex::new(BTreeMap::new()),
            containers: Mutex::new(BTreeMap::new()),
            names: Mutex::new(HashMap::new()),
        })
    }

    // --- names ---

    /// Reserves `name` for `id`; AlreadyExists names the holder.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), PodError> {
        let mut names = lock(&self.names);
        match names.get(name) {
            Some(holder) if holder != id => Err(PodError::AlreadyExists(format!(
                "the name {} is reserved by {holder}",
                quote(name)
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

    /// Changes the record in memory only, for what the next save stores anyway: RunPodSandbox's
    /// steps before READY, which a crash undoes from what the first save recorded.
    pub fn amend_sandbox(&self, sandbox: &Sandbox, update: impl FnOnce(&mut SandboxRecord)) {
        update(&mut lock(&sandbox.record));
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
        self.save_container_as(container, update, true).await
    }

    /// [`Engine::save_container`] without the syncs (`StateStore::save_volatile`): for steps a
    /// power loss may undo harmlessly, because it also ends every container process — the
    /// process of a create, the start, the `Removing` mark.
    pub async fn save_container_volatile(
        &self,
        container: &Container,
        update: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, PodError> {
        self.save_container_as(container, update, false).await
    }

    async fn save_container_as(
        &self,
        container: &Container,
        update: impl FnOnce(&mut ContainerRecord),
        synced: bool,
    ) -> Result<ContainerRecord, PodError> {
        let mut record = container.record();
        update(&mut record);
        match synced {
            true => {
                self.store
                    .save(Kind::Container, &record.id, &record)
                    .await?
            }
            false => {
                self.store
                    .save_volatile(Kind::Container, &record.id, &record)
                    .await?
            }
        }
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
            "{what} id prefix {} is ambiguous",
            quote(id)
        ))),
        (None, _) => Err(PodError::NotFound(format!(
            "{what} {} not found",
            quote(id)
        ))),
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
