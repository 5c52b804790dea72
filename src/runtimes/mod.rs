//! The runtime handlers: which OCI runtime serves a CRI `runtime_handler`, what each offers
//! (`features.rs`), the cgroup driver every runtime call and spec uses, and how specs are
//! generated on this host. Worked out once at start-up; `Engine` holds it as `engine.runtimes`
//! beside its tables, and the lifecycle code asks it instead of the engine.

mod features;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use features::HandlerFeatures;

use crate::config::{Config, RuntimeConfig, systemd_booted};
use crate::libcontainer::cgroups::Driver;
use crate::oci::SpecOptions;
use crate::oci_runtime::OciRuntime;

#[derive(Debug, thiserror::Error)]
pub enum RuntimesError {
    /// A request named a handler the configuration does not have (InvalidArgument).
    #[error(
        "unknown runtime handler {}; configured: {configured}",
        crate::validate::quote(name)
    )]
    UnknownHandler { name: String, configured: String },
    /// The configuration cannot work on this host (FailedPrecondition).
    #[error("{0}")]
    Unusable(String),
}

/// The configured runtime handlers and the host facts every runtime call needs.
pub struct Runtimes {
    config: RuntimeConfig,
    /// The crius binary: the built-in runtime (`crius oci`).
    exe: PathBuf,
    /// `<runroot>/runtimes/<name>` is a handler's state root unless it names one.
    runroot: PathBuf,
    /// The cgroup driver, configured or detected at start.
    pub cgroup_driver: Driver,
    /// The parent of pods whose request gives none, for that driver.
    pub default_cgroup_parent: String,
    /// How specs are generated here: the host's cgroups and LSMs, detected once at start.
    spec_options: SpecOptions,
    /// Per runtime handler, detected at start.
    features: HashMap<String, HandlerFeatures>,
}

impl Runtimes {
    /// Picks the cgroup driver and asks each handler what it offers. `exe` is the crius binary,
    /// `store_root` a directory on the filesystem of the image store (for the id-mapping probe).
    pub fn new(config: &Config, exe: &Path, store_root: &Path) -> Result<Runtimes, RuntimesError> {
        let booted = systemd_booted();
        let cgroup_driver = config.runtime.cgroup_driver(booted);
        if cgroup_driver == Driver::Systemd && !booted {
            return Err(RuntimesError::Unusable(
                "runtime.cgroup_manager is \"systemd\", but this host was not booted with systemd (no /run/systemd/system)".into(),
            ));
        }
        let default_cgroup_parent = config.runtime.default_cgroup_parent(cgroup_driver);
        tracing::info!(
            driver = cgroup_driver.as_str(),
            default_parent = default_cgroup_parent.as_str(),
            "cgroup driver"
        );
        let mut runtimes = Runtimes {
            config: config.runtime.clone(),
            exe: exe.to_path_buf(),
            runroot: config.runroot.clone(),
            cgroup_driver,
            default_cgroup_parent,
            spec_options: SpecOptions::default(),
            features: HashMap::new(),
        };
        runtimes.features = runtimes.detect_features(store_root);
        Ok(runtimes)
    }

    fn detect_features(&self, store_root: &Path) -> HashMap<String, HandlerFeatures> {
        let idmap_ok = features::idmap_works(store_root);
        self.handler_names()
            .into_iter()
            .filter_map(|name| {
                let runtime = self.runtime_for(&name).ok()?;
                let builtin = runtime.path == self.exe;
                let f = features::detect(&runtime, builtin, idmap_ok);
                Some((name, f))
            })
            .collect()
    }

    /// What the handler `name` ("" = the default) offers.
    pub fn features(&self, name: &str) -> HandlerFeatures {
        let name = if name.is_empty() {
            self.config.default_runtime.as_str()
        } else {
            name
        };
        self.features.get(name).copied().unwrap_or_default()
    }

    /// The OCI runtime for a CRI `runtime_handler` ("" = the default one).
    pub fn runtime_for(&self, handler: &str) -> Result<OciRuntime, RuntimesError> {
        let rt = &self.config;
        let name = if handler.is_empty() {
            rt.default_runtime.as_str()
        } else {
            handler
        };
        let Some(entry) = rt.handler(name) else {
            return Err(RuntimesError::UnknownHandler {
                name: name.to_owned(),
                configured: rt.handler_names().join(", "),
            });
        };
        let (path, mut args) = if entry.path.as_os_str().is_empty() {
            (self.exe.clone(), vec!["oci".to_owned()])
        } else {
            (entry.path.clone(), Vec::new())
        };
        if self.cgroup_driver == Driver::Systemd {
            // runc's global flag: cgroupsPath is "slice:prefix:name", the cgroup a scope unit.
            args.push("--systemd-cgroup".to_owned());
        }
        let root = if entry.root.as_os_str().is_empty() {
            self.runroot.join("runtimes").join(name)
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

    /// Names of every configured handler, the default first.
    pub fn handler_names(&self) -> Vec<String> {
        let rt = &self.config;
        let mut names = vec![rt.default_runtime.clone()];
        names.extend(
            rt.handler_names()
                .into_iter()
                .filter(|n| *n != rt.default_runtime),
        );
        names
    }
}
