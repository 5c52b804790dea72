//! Looking at processes through `/proc`: resident and proportional memory, parent pids, who
//! owns a unix socket, and the per-container monitors of a runtime (found by the container or
//! pod ids on their command line). Read-only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// `VmRSS` of `pid` in KiB (`None` when gone or unreadable).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:` value of `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `Pss` of `pid` in KiB, from `/proc/<pid>/smaps_rollup` (`None` when gone or unreadable):
/// its private pages plus its share of each page it maps with other processes, so the PSS of
/// many processes of one executable adds up to the memory they use together.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_pss(&rollup)
}

/// The `Pss:` value of `/proc/<pid>/smaps_rollup` text, in KiB.
pub fn parse_pss(rollup: &str) -> Option<u64> {
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The parent pid of `pid` (field 4 of `/proc/<pid>/stat`, read after the command name's
/// closing parenthesis, which may itself hold spaces and parentheses).
pub fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

/// The ppid field of `/proc/<pid>/stat` text.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every pid in `/proc`.
pub fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `/proc/<pid>/cmdline` split at NULs.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `/proc/<pid>/exe`.
pub fn exe(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The base name of `/proc/<pid>/exe` (`" (deleted)"` stripped).
pub fn exe_name(pid: u32) -> Option<String> {
    let exe = exe(pid)?;
    let name = exe.file_name()?.to_str()?;
    Some(name.trim_end_matches(" (deleted)").to_string())
}

/// A process found by [`find_processes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub exe_name: String,
    pub rss_kib: u64,
    /// `None` where `smaps_rollup` cannot be read (kernels before 4.14).
    pub pss_kib: Option<u64>,
}

/// Processes (other than `exclude`) whose command line mentions any of `needles`, and whose
/// executable is named `exe_name` when given.
pub fn find_processes(
    needles: &[String],
    exe_name_is: Option<&str>,
    exclude: &[u32],
) -> Vec<ProcInfo> {
    let own = std::process::id();
    pids()
        .into_iter()
        .filter(|pid| *pid != own && !exclude.contains(pid))
        .filter_map(|pid| {
            let name = exe_name(pid)?;
            if exe_name_is.is_some_and(|want| want != name) {
                return None;
            }
            let args = cmdline(pid);
            if !args
                .iter()
                .any(|a| needles.iter().any(|n| a.contains(n.as_str())))
            {
                return None;
            }
            Some(ProcInfo {
                pid,
                exe_name: name,
                rss_kib: rss_kib(pid)?,
                pss_kib: pss_kib(pid),
            })
        })
        .collect()
}

/// The process holding the listening unix socket bound at `socket` (via `/proc/net/unix` and
/// the `socket:[inode]` links in `/proc/*/fd`).
pub fn unix_socket_owner(socket: &Path) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let wanted = socket.to_str()?;
    let inode = table.lines().skip(1).find_map(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening.
        (fields.len() >= 8 && fields[7] == wanted && fields[3] == "00010000")
            .then(|| fields[6].to_string())
    })?;
    let link = format!("socket:[{inode}]");
    pids().into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == link.as_str())
            })
        })
    })
}

/// Samples a process's RSS on a thread of its own and keeps the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(every);
                }
            })
        };
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// The peak so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Stops sampling; the peak in KiB.
    pub fn finish(mut self) -> u64 {
        self.halt();
        self.peak_kib()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_parses() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(4242));
        assert_eq!(parse_vm_rss("Name:\tkthread\n"), None);
    }

    #[test]
    fn pss_parses() {
        let rollup = "00400000-7fff [rollup]\nRss:\t  1200 kB\nPss:\t   97 kB\nPss_Anon:\t 80 kB\n";
        assert_eq!(parse_pss(rollup), Some(97));
        assert_eq!(parse_pss("Rss:\t  1200 kB\n"), None);
    }

    #[test]
    fn stat_ppid_parses() {
        assert_eq!(parse_stat_ppid("42 (a) b) (c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid("42 (x"), None);
        let me = std::process::id();
        assert_eq!(ppid(me), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn own_process_is_visible() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(pss_kib(me).unwrap() > 0);
        assert!(!cmdline(me).is_empty());
        assert!(exe_name(me).is_some());
        let sampler = RssSampler::start(me, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(sampler.finish() > 0);
    }

    #[test]
    fn children_are_found_by_their_command_line() {
        use std::os::unix::process::CommandExt;
        let marker = format!("crius-e2e-procs-{}", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("X", &marker)
            .spawn()
            .unwrap();
        // Its own process group, so the kill below also ends the `sleep` it forks.
        let mut child2 = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :", &marker])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let found = find_processes(std::slice::from_ref(&marker), None, &[]);
        let sh_only = find_processes(&[marker], Some("sleep"), &[]);
        let _ = child.kill();
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child2.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        let _ = child2.wait();
        assert_eq!(
            found.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [child2.id()]
        );
        assert!(sh_only.is_empty(), "{sh_only:?}");
    }

    #[test]
    fn unix_socket_owner_finds_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(unix_socket_owner(&path), Some(std::process::id()));
        assert_eq!(unix_socket_owner(&dir.path().join("none.sock")), None);
    }
}
