//! `linux.netDevices`: move named network interfaces of the runtime's network namespace into
//! the container's at `create`, renamed when asked, keeping their permanent global addresses,
//! and set them up. Per the runtime-spec they are never moved back: when the container's
//! network namespace goes away the kernel returns physical devices to the initial namespace
//! and destroys virtual ones.

mod netlink;

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType, LinuxNetDevice};

pub use netlink::{Link, Netlink};

#[derive(Debug, thiserror::Error)]
pub enum NetDevError {
    #[error(
        "linux.netDevices needs a network namespace of the container's own (linux.namespaces has no \"network\")"
    )]
    NoNamespace,
    #[error("linux.netDevices: the container's network namespace is the runtime's own")]
    HostNamespace,
    #[error("linux.netDevices: invalid interface name {0:?}")]
    BadName(String),
    #[error(
        "linux.netDevices: {dev}: the container's network namespace already has a device named {name:?} (append %d to the name to let the kernel number it)"
    )]
    NameTaken { dev: String, name: String },
    #[error("linux.netDevices: {dev}: {step}: {source}")]
    Netlink {
        dev: String,
        step: &'static str,
        source: std::io::Error,
    },
    #[error("linux.netDevices: {step} {path}: {source}")]
    Namespace {
        step: &'static str,
        path: String,
        source: nix::errno::Errno,
    },
}

fn nl<'a>(dev: &'a str, step: &'static str) -> impl FnOnce(std::io::Error) -> NetDevError + 'a {
    move |source| NetDevError::Netlink {
        dev: dev.to_string(),
        step,
        source,
    }
}

/// A usable interface name: 1–15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() < libc::IFNAMSIZ
        && n != "."
        && n != ".."
        && !n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Spec-only checks: a network namespace entry and valid names.
pub fn validate(linux: &Linux) -> Result<(), NetDevError> {
    let Some(devs) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let has_net = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Network);
    if !has_net {
        return Err(NetDevError::NoNamespace);
    }
    for (host, d) in devs {
        for n in std::iter::once(host.as_str()).chain(d.name().as_deref()) {
            if !valid_name(n) {
                return Err(NetDevError::BadName(n.to_string()));
            }
        }
    }
    Ok(())
}

/// Before anything is created: every device exists here.
pub fn check_present(devs: &HashMap<String, LinuxNetDevice>) -> Result<(), NetDevError> {
    if devs.is_empty() {
        return Ok(());
    }
    let mut host = Netlink::open().map_err(nl("", "opening netlink socket"))?;
    for name in devs.keys() {
        host.link_by_name(name)
            .map_err(nl(name, "looking up the device"))?;
    }
    Ok(())
}

fn ns_id(p: &Path) -> Option<(u64, u64)> {
    fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Move `devs` into the network namespace at `netns` (e.g. `/proc/<init>/ns/net`).
pub fn move_into(devs: &HashMap<String, LinuxNetDevice>, netns: &Path) -> Result<(), NetDevError> {
    if devs.is_empty() {
        return Ok(());
    }
    if ns_id(netns).is_some() && ns_id(netns) == ns_id(Path::new("/proc/thread-self/ns/net")) {
        return Err(NetDevError::HostNamespace);
    }
    let target = open_ns(netns)?;
    let mut host = Netlink::open().map_err(nl("", "opening netlink socket"))?;
    let mut inside = socket_in(&target)?;
    // Sorted, so a failure is reproducible.
    let mut names: Vec<_> = devs.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, d) in names {
        let link = host
            .link_by_name(name)
            .map_err(nl(name, "looking up the device"))?;
        let addrs = host
            .kept_addresses(link.index)
            .map_err(nl(name, "listing addresses"))?;
        let new_name = d.name().as_deref().filter(|n| !n.is_empty());
        // The kernel may move the device and only then fail to rename it, so a taken name is
        // caught first.
        let want = new_name.unwrap_or(name);
        if !want.contains('%') && inside.link_by_name(want).is_ok() {
            return Err(NetDevError::NameTaken {
                dev: name.clone(),
                name: want.to_string(),
            });
        }
        host.move_link(link.index, &target, new_name)
            .map_err(nl(name, "moving into the container's network namespace"))?;
        let moved = find_moved(&mut inside, &link).map_err(nl(name, "finding the moved device"))?;
        for a in &addrs {
            inside
                .add_address(moved.index, a)
                .map_err(nl(name, "restoring an address"))?;
        }
        inside
            .set_up(moved.index)
            .map_err(nl(name, "setting the device up"))?;
    }
    Ok(())
}

fn open_ns(p: &Path) -> Result<OwnedFd, NetDevError> {
    open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|source| {
        NetDevError::Namespace {
            step: "opening",
            path: p.display().to_string(),
            source,
        }
    })
}

/// A netlink socket bound to `target`: enter it, open the socket, come back. The runtime is
/// single-threaded here, so nothing else runs in the borrowed namespace meanwhile.
fn socket_in(target: &OwnedFd) -> Result<Netlink, NetDevError> {
    let own = open_ns(Path::new("/proc/thread-self/ns/net"))?;
    let ns_err = |step, source| NetDevError::Namespace {
        step,
        path: "network namespace".into(),
        source,
    };
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ns_err("entering", e))?;
    let sock = Netlink::open();
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ns_err("returning from", e))?;
    sock.map_err(nl("", "opening netlink socket in the container"))
}

/// The moved device keeps its index unless that is taken in the target; its hardware address
/// identifies it either way.
fn find_moved(inside: &mut Netlink, before: &Link) -> std::io::Result<Link> {
    if let Ok(l) = inside.link_by_index(before.index)
        && l.address == before.address
    {
        return Ok(l);
    }
    inside
        .links()?
        .into_iter()
        .find(|l| l.address.is_some() && l.address == before.address)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV))
}

#[cfg(test)]
mod tests;
