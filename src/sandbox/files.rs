//! Per-pod files made once when the sandbox is created, for every container of the pod to
//! bind-mount: /etc/resolv.conf, /etc/hostname, /etc/hosts and the /dev/shm tmpfs.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::api;

/// The pod's /dev/shm size when none is configured (as cri-o and Docker).
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting the shm tmpfs on {path}: {source}")]
    Mount {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("unmounting {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FilesError {
    let path = path.to_path_buf();
    move |source| FilesError::Io { op, path, source }
}

/// Writes /etc/resolv.conf from the CRI DNSConfig: one `nameserver` line per server, then one
/// `search` and one `options` line. Without a DNSConfig, or with all three lists empty, the
/// host's resolv.conf (`host_resolv`, normally /etc/resolv.conf) is copied.
pub fn write_resolv_conf(
    path: &Path,
    dns: Option<&api::DnsConfig>,
    host_resolv: &Path,
) -> Result<(), FilesError> {
    let dns =
        dns.filter(|d| !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()));
    let Some(dns) = dns else {
        let content = std::fs::read(host_resolv).map_err(io_err("reading", host_resolv))?;
        return write_atomic(path, &content);
    };
    for entry in dns.servers.iter().chain(&dns.searches).chain(&dns.options) {
        check_line("DNS config entry", entry)?;
    }
    let mut content = String::new();
    for server in dns.servers.iter().filter(|s| !s.is_empty()) {
        content.push_str(&format!("nameserver {server}\n"));
    }
    for (keyword, list) in [("search", &dns.searches), ("options", &dns.options)] {
        let words: Vec<&str> = list
            .iter()
            .map(String::as_str)
            .filter(|w| !w.is_empty())
            .collect();
        if !words.is_empty() {
            content.push_str(&format!("{keyword} {}\n", words.join(" ")));
        }
    }
    write_atomic(path, content.as_bytes())
}

/// Writes /etc/hostname: `"<hostname>\n"`.
pub fn write_hostname(path: &Path, hostname: &str) -> Result<(), FilesError> {
    check_line("hostname", hostname)?;
    write_atomic(path, format!("{hostname}\n").as_bytes())
}

/// Writes /etc/hosts: the IPv4 and IPv6 localhost entries and, when `ip` is given,
/// `"<ip>\t<hostname>"`. A pod on the host network gets a copy of the host's file (`host_hosts`).
pub fn write_hosts(
    path: &Path,
    hostname: &str,
    ip: Option<IpAddr>,
    host_network: bool,
    host_hosts: &Path,
) -> Result<(), FilesError> {
    if host_network {
        let content = std::fs::read(host_hosts).map_err(io_err("reading", host_hosts))?;
        return write_atomic(path, &content);
    }
    check_line("hostname", hostname)?;
    let mut content = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip.filter(|_| !hostname.is_empty()) {
        content.push_str(&format!("{ip}\t{hostname}\n"));
    }
    write_atomic(path, content.as_bytes())
}

/// Mounts a tmpfs for the pod's /dev/shm on `dir` (created): mode 1777, nosuid, nodev, noexec,
/// `size` bytes (0 means [`DEFAULT_SHM_SIZE`]).
pub fn mount_shm(dir: &Path, size: u64) -> Result<(), FilesError> {
    let size = if size == 0 { DEFAULT_SHM_SIZE } else { size };
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = format!("mode=1777,size={size}");
    mount(Some("shm"), dir, Some("tmpfs"), flags, Some(data.as_str())).map_err(|source| {
        FilesError::Mount {
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// Lazily unmounts the pod's /dev/shm and removes its directory; idempotent.
pub fn unmount_shm(dir: &Path) -> Result<(), FilesError> {
    loop {
        match umount2(dir, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => break,
            Err(source) => {
                return Err(FilesError::Unmount {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err("removing", dir)(e)),
        _ => Ok(()),
    }
}

/// A value that becomes (part of) one line: a newline would let a request add its own lines,
/// and a NUL would cut the file short for C readers.
fn check_line(what: &str, value: &str) -> Result<(), FilesError> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(FilesError::InvalidArgument(format!(
            "{what} {value:?} contains a line break or NUL"
        )));
    }
    Ok(())
}

/// Replaces `path` (mode 0644) atomically, so a container never sees a half-written file.
/// `Volatile`: these files live under the run root and die with the boot, as the pod does; a
/// crash of the daemon (not of the machine) loses nothing written.
fn write_atomic(path: &Path, content: &[u8]) -> Result<(), FilesError> {
    let options = crius_atomic_file::Options {
        mode: Some(0o644),
        ..crius_atomic_file::Options::new(crius_atomic_file::Durability::Volatile)
    };
    crius_atomic_file::write_with(path, content, &options).map_err(io_err("writing", path))
}

#[cfg(test)]
mod tests;
