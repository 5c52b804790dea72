//! The systemd cgroup driver (runc's `--systemd-cgroup`): each container is a transient scope
//! unit, `<prefix>-<name>.scope` in the slice its `"<slice>:<prefix>:<name>"` cgroupsPath
//! names, created and removed over D-Bus so that systemd knows the cgroup is taken.
//!
//! systemd gets every resource it has a property for ([`props`]); then, as runc does, all the
//! resources are written through the cgroupfs manager (v1 or v2) at the scope's path, which
//! also covers what systemd cannot express (device rules as the v2 eBPF program, hugetlb, io
//! throttles, raw unified keys). Freezing, pids, stats and OOM events are plain cgroupfs.
//!
//! A scope needs a process to exist, and `create` runs before the container's first process
//! does: so [`Manager::create`] only records that this is a new container, `apply` remembers
//! the resources, and the first `add_task` starts the unit with that pid and then writes the
//! resources, before the container's process can exec. A manager opened for an existing
//! container (`update`, `exec`, `delete`) talks to the existing unit.

mod dbus;
mod p2p;
pub mod path;
pub mod props;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

pub use path::{
    DEFAULT_PREFIX, DEFAULT_SLICE, SystemdPath, expand, expand_slice, is_systemd_form,
    slice_of_parent,
};

use self::dbus::{DbusSystemd, Systemd};
use self::props::Host;
use super::{CgroupError, CgroupVersion, FastJoin, Manager, OomSource, Stats};

/// Where a new container's unit is in its life.
#[derive(Debug, Default)]
struct Pending {
    /// `create` was called: the unit is ours to start at the first `add_task`.
    creating: bool,
    /// This manager started the unit (or found it already there).
    started: bool,
    /// Resources `apply`'d before the unit existed.
    resources: Option<LinuxResources>,
}

#[derive(Debug)]
pub struct SystemdManager {
    path: SystemdPath,
    cgroup: CgroupVersion,
    fs: Box<dyn Manager>,
    systemd: Box<dyn Systemd>,
    pending: Mutex<Pending>,
}

impl SystemdManager {
    /// Manager for a systemd-form `cgroups_path` on the hierarchy at `root`.
    pub fn new(
        cgroups_path: &str,
        root: &Path,
        cgroup: CgroupVersion,
    ) -> Result<Self, CgroupError> {
        Self::with_systemd(cgroups_path, root, cgroup, Box::new(DbusSystemd::default()))
    }

    fn with_systemd(
        cgroups_path: &str,
        root: &Path,
        cgroup: CgroupVersion,
        systemd: Box<dyn Systemd>,
    ) -> Result<Self, CgroupError> {
        let path = expand(cgroups_path)?;
        let fs = super::manager_for(cgroup, &path.cgroup_path, root)?;
        Ok(Self {
            path,
            cgroup,
            fs,
            systemd,
            pending: Mutex::new(Pending::default()),
        })
    }

    /// The unit and its cgroup.
    pub fn path(&self) -> &SystemdPath {
        &self.path
    }

    fn pending(&self) -> Result<MutexGuard<'_, Pending>, CgroupError> {
        self.pending
            .lock()
            .map_err(|_| CgroupError::Systemd("manager state lock poisoned".into()))
    }

    fn host(&self) -> Result<Host, CgroupError> {
        Ok(Host {
            cgroup: self.cgroup,
            systemd: self.systemd.version()?,
        })
    }

    /// Starts the unit with `pid` in it. A unit that already exists is this container's when it
    /// is running (idempotent, as in runc); a failed leftover of the same name is reset and the
    /// start retried once.
    fn start_unit(&self, pid: Pid, r: &LinuxResources) -> Result<(), CgroupError> {
        let host = self.host()?;
        let pid = u32::try_from(pid.as_raw())
            .map_err(|_| CgroupError::Systemd(format!("invalid pid {pid}")))?;
        let description = format!("crius container {}", self.path.unit);
        let props = props::start_properties(&self.path, &description, Some(pid), &host, r)?;
        for attempt in 0..2 {
            if self.systemd.start_transient_unit(&self.path.unit, &props)? {
                return Ok(());
            }
            match self.systemd.active_state(&self.path.unit)?.as_deref() {
                Some("active" | "activating" | "reloading") => return Ok(()),
                state if attempt == 0 => {
                    tracing::debug!(unit = %self.path.unit, ?state, "resetting leftover unit");
                    self.systemd.reset_failed_unit(&self.path.unit)?;
                }
                state => {
                    return Err(CgroupError::Systemd(format!(
                        "unit {} exists in state {}",
                        self.path.unit,
                        state.unwrap_or("not loaded")
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Manager for SystemdManager {
    fn create(&self) -> Result<(), CgroupError> {
        self.pending()?.creating = true;
        // v1: systemd only makes the scope's directory in the hierarchies it manages; the
        // others (cpuset, freezer, ...) are ours, and the container's cgroup mounts need them
        // before the process exists. v2: the directory is systemd's to make.
        if self.cgroup == CgroupVersion::V1 {
            self.fs.create()?;
        }
        Ok(())
    }

    fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        let mut pending = self.pending()?;
        if !pending.creating || pending.started {
            // An existing container (exec): join by path, as runc does.
            drop(pending);
            return self.fs.add_task(pid);
        }
        let resources = pending.resources.take().unwrap_or_default();
        // Marked before the call: a start whose job timed out may still leave a unit, which
        // destroy must then stop.
        pending.started = true;
        self.start_unit(pid, &resources)?;
        drop(pending);
        // Controllers systemd does not enable for the scope (cpuset, hugetlb, ...) are
        // enabled down the path like the fs driver does (runc too); on v1 this makes the
        // directories of hierarchies systemd left alone.
        self.fs.create()?;
        // v1: the hierarchies systemd does not manage still have the pid at the caller's cgroup.
        self.fs.add_task(pid)?;
        self.fs.apply(&resources)
    }

    fn fast_join(&self) -> Option<FastJoin> {
        // A new unit is started with its first process, by systemd; an existing one (exec) is
        // joined by path, as `add_task` does.
        let pending = self.pending().ok()?;
        if pending.creating && !pending.started {
            return None;
        }
        drop(pending);
        self.fs.fast_join()
    }

    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let mut pending = self.pending()?;
        if pending.creating && !pending.started {
            pending.resources = Some(resources.clone());
            return Ok(());
        }
        drop(pending);
        let props = props::resource_properties(resources, &self.host()?)?;
        self.systemd.set_unit_properties(&self.path.unit, &props)?;
        self.fs.apply(resources)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.fs.freeze()
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.fs.thaw()
    }

    fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        self.fs.pids()
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let never_started = {
            let p = self.pending()?;
            p.creating && !p.started
        };
        if !never_started {
            self.systemd.stop_unit(&self.path.unit)?;
            self.systemd.reset_failed_unit(&self.path.unit)?;
        }
        // What systemd did not remove: our v1 directories, sub-cgroups made in the container.
        self.fs.destroy()
    }

    fn oom_source(&self) -> OomSource {
        self.fs.oom_source()
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        self.fs.stats()
    }

    fn version(&self) -> CgroupVersion {
        self.cgroup
    }
}

#[cfg(test)]
mod tests;
