//! Where a pod's network counters (`/proc/net/dev` of its network namespace) are read from, for
//! PodSandboxStats and the pod metrics: a live process in the namespace (the pause, or in a pod
//! without one a running container), else the pinned namespace itself, joined by a throwaway
//! thread (`/proc/thread-self/net` shows the thread's namespace).

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns};

use crate::engine::Engine;
use crate::proc_info;
use crate::store::SandboxRecord;

/// A source of a pod's `net/dev` text.
#[derive(Debug, Clone)]
pub enum NetDev {
    /// `/proc/<pid>/net/dev` of a process in the pod's network namespace.
    Proc(PathBuf),
    /// The pinned network namespace file.
    Pinned(PathBuf),
}

impl NetDev {
    /// Of pod `record`; `None` for a pod on the host's network.
    pub fn of(engine: &Engine, record: &SandboxRecord) -> Option<NetDev> {
        let pinned = record.pinned.net.clone()?;
        let live = |p: &crate::store::ProcessRef| proc_info::is_alive(p.pid, p.start_time);
        let pid = match record.pause {
            Some(p) if live(&p) => Some(p.pid),
            _ => engine
                .containers_of(&record.id)
                .iter()
                .filter_map(|c| c.record().process)
                .find(live)
                .map(|p| p.pid),
        };
        Some(match pid {
            Some(pid) => NetDev::Proc(PathBuf::from(format!("/proc/{pid}/net/dev"))),
            None => NetDev::Pinned(pinned),
        })
    }

    /// The text, `None` if it cannot be read (the pod went meanwhile). Blocking.
    pub fn read(&self) -> Option<String> {
        match self {
            NetDev::Proc(path) => std::fs::read_to_string(path).ok(),
            NetDev::Pinned(ns) => {
                let ns = File::open(ns).ok()?;
                std::thread::Builder::new()
                    .name("crius-netdev".into())
                    .spawn(move || {
                        setns(&ns, CloneFlags::CLONE_NEWNET).ok()?;
                        std::fs::read_to_string("/proc/thread-self/net/dev").ok()
                    })
                    .ok()?
                    .join()
                    .ok()
                    .flatten()
            }
        }
    }
}
