//! What is done inside a pod's namespaces once they are pinned, before its network is set up:
//! the loopback interface brought up, and the pod's sysctls (`linux.sysctls`) written.
//!
//! The loopback is brought up here over netlink rather than by exec'ing CNI's `loopback`
//! plugin as a network of its own (what cri-o does): the same end state, one exec less per pod.
//! A conflist that lists `loopback` still runs it, as configured. The sysctls are written here
//! as cri-o's pinns writes them, the same for a pod with a pause process and one without, so a
//! `net.ipv4.conf.default.*` value also covers the interface CNI then adds.
//!
//! `/proc/sys` and a netlink socket belong to the namespaces of the thread that opens them, so a
//! throwaway thread joins the pinned namespaces; the daemon's own threads never change
//! namespace. The sysctl keys were checked against the pod's namespaces when the request came
//! in (`validate`); the writer checks them again.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

use crate::engine::PodError;
use crate::libcontainer::netdev::Netlink;
use crate::libcontainer::sysctl::{self, Namespaces, Planned, SysctlError};
use crate::store::Pinned;

use super::namespaces::NsSet;

/// The pod's sysctls checked against the namespaces it will own, with their paths.
pub fn plan(sysctls: &HashMap<String, String>, which: &NsSet) -> Result<Vec<Planned>, PodError> {
    let owned = Namespaces {
        net: which.net,
        ipc: which.ipc,
        uts: which.uts,
    };
    sysctl::plan(sysctls, owned).map_err(|e| match e {
        SysctlError::InvalidKey(_) | SysctlError::NotAllowed { .. } => {
            PodError::InvalidArgument(format!("linux.sysctls: {e}"))
        }
        other => PodError::internal("the pod's sysctls", other),
    })
}

/// Brings up `lo` in the pod's network namespace (if it has its own) and writes `sysctls`
/// ([`plan`]; a pod with a user namespace has had them written by the child that made it,
/// `namespaces::pin`). Nothing to do, and no thread, for a pod on the host's network without
/// sysctls.
pub fn set_up(pinned: &Pinned, sysctls: &[Planned]) -> Result<(), PodError> {
    if pinned.net.is_none() && sysctls.is_empty() {
        return Ok(());
    }
    let mut joins = Vec::new();
    for (path, flag) in [
        (&pinned.net, CloneFlags::CLONE_NEWNET),
        (&pinned.ipc, CloneFlags::CLONE_NEWIPC),
        (&pinned.uts, CloneFlags::CLONE_NEWUTS),
    ] {
        if let Some(path) = path {
            let file = File::open(path)
                .map_err(|e| PodError::internal(format!("opening {}", path.display()), e))?;
            joins.push((file, flag));
        }
    }
    let own_net = pinned.net.is_some();
    let sysctls = sysctls.to_vec();
    let worker = std::thread::Builder::new()
        .name("crius-podns".into())
        .spawn(move || -> Result<(), PodError> {
            for (file, flag) in &joins {
                setns(file, *flag)
                    .map_err(|e| PodError::internal("joining the pod's namespaces", e))?;
            }
            if own_net {
                loopback_up()
                    .map_err(|e| PodError::internal("setting up the pod's loopback", e))?;
            }
            sysctl::write_planned(Path::new("/proc/sys"), &sysctls)
                .map_err(|e| PodError::internal("setting the pod's sysctls", e))
        })
        .map_err(|e| PodError::internal("starting the pod namespace thread", e))?;
    worker
        .join()
        .map_err(|_| PodError::Internal("the pod namespace thread panicked".into()))?
}

/// `ip link set lo up` in the calling thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    let mut netlink = Netlink::open()?;
    let lo = netlink.link_by_name("lo")?;
    netlink.set_up(lo.index)
}
