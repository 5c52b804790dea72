//! Notices the kernel OOM killer acting in the container's memory cgroup.
//!
//! cgroup v1: an eventfd registered for `memory.oom_control` through `cgroup.event_control`;
//! the kernel signals it when the cgroup hits its limit and the OOM killer is invoked.
//! cgroup v2: inotify on `memory.events`, whose `oom_kill` counter then tells. In both, the
//! `oom_kill` counter (v1 `memory.oom_control` has one since Linux 4.13) is read again when the
//! container exits, so a kill whose notification the loop has not seen yet is still counted.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

enum Notifier {
    /// Kept open: closing `memory.oom_control` would end the registration.
    V1 {
        event: EventFd,
        _oom_control: File,
    },
    V2 {
        inotify: Inotify,
    },
}

pub struct OomWatcher {
    notifier: Notifier,
    /// `memory.oom_control` (v1) or `memory.events` (v2).
    counter_file: PathBuf,
    cgroup_dir: PathBuf,
    baseline: u64,
    oom_seen: bool,
}

impl OomWatcher {
    /// Watches the memory cgroup `pid` is in.
    pub fn for_pid(pid: i32) -> io::Result<Self> {
        let proc_cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        let (v1, v2) = parse_proc_cgroup(&proc_cgroup);
        match (v1, v2) {
            (Some(path), _) => {
                Self::v1(&Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')))
            }
            (None, Some(path)) => {
                let root = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                    Path::new("/sys/fs/cgroup")
                } else {
                    Path::new("/sys/fs/cgroup/unified")
                };
                Self::v2(&root.join(path.trim_start_matches('/')))
            }
            (None, None) => Err(io::Error::other(format!("no memory cgroup for pid {pid}"))),
        }
    }

    fn v1(dir: &Path) -> io::Result<Self> {
        let counter_file = dir.join("memory.oom_control");
        let oom_control = File::open(&counter_file)?;
        let event = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        let registration = format!("{} {}", event.as_fd().as_raw_fd(), oom_control.as_raw_fd());
        fs::write(dir.join("cgroup.event_control"), registration)?;
        Ok(OomWatcher {
            baseline: read_counter(&counter_file).unwrap_or(0),
            notifier: Notifier::V1 {
                event,
                _oom_control: oom_control,
            },
            counter_file,
            cgroup_dir: dir.to_path_buf(),
            oom_seen: false,
        })
    }

    fn v2(dir: &Path) -> io::Result<Self> {
        let counter_file = dir.join("memory.events");
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(&counter_file, AddWatchFlags::IN_MODIFY)?;
        Ok(OomWatcher {
            baseline: read_counter(&counter_file).unwrap_or(0),
            notifier: Notifier::V2 { inotify },
            counter_file,
            cgroup_dir: dir.to_path_buf(),
            oom_seen: false,
        })
    }

    /// Readable when something happened; then call [`OomWatcher::handle_event`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.notifier {
            Notifier::V1 { event, .. } => event.as_fd(),
            Notifier::V2 { inotify } => inotify.as_fd(),
        }
    }

    pub fn handle_event(&mut self) {
        let notified = match &self.notifier {
            Notifier::V1 { event, .. } => event.read().is_ok(),
            Notifier::V2 { inotify } => inotify.read_events().is_ok_and(|e| !e.is_empty()),
        };
        if notified {
            self.check();
        }
    }

    fn check(&mut self) {
        match self.notifier {
            // v1 signals the eventfd when the cgroup runs out of memory, and when it is removed:
            // an event while it still exists is an OOM (conmon's rule).
            Notifier::V1 { .. } => self.oom_seen |= self.cgroup_dir.exists(),
            Notifier::V2 { .. } => {
                self.oom_seen |= read_counter(&self.counter_file).is_some_and(|n| n > self.baseline)
            }
        }
    }

    /// Whether the OOM killer acted in the cgroup since the watch started.
    pub fn oom_killed(&mut self) -> bool {
        // A notification the loop did not get to before the exit.
        self.handle_event();
        if let Some(count) = read_counter(&self.counter_file) {
            self.oom_seen |= count > self.baseline;
        }
        self.oom_seen
    }
}

fn read_counter(path: &Path) -> Option<u64> {
    parse_oom_kill(&fs::read_to_string(path).ok()?)
}

/// The `oom_kill <n>` line of `memory.oom_control` (v1) or `memory.events` (v2).
pub fn parse_oom_kill(content: &str) -> Option<u64> {
    content
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// From `/proc/<pid>/cgroup`: the v1 memory controller's path and the v2 (unified) path.
pub fn parse_proc_cgroup(content: &str) -> (Option<String>, Option<String>) {
    let mut v1 = None;
    let mut v2 = None;
    for line in content.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            v2 = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path.to_string());
        }
    }
    (v1, v2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counters() {
        assert_eq!(
            parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            Some(2)
        );
        assert_eq!(
            parse_oom_kill("low 0\nhigh 0\nmax 4\noom 3\noom_kill 1\noom_group_kill 0\n"),
            Some(1)
        );
        assert_eq!(parse_oom_kill("oom_kill_disable 0\nunder_oom 0\n"), None);
    }

    #[test]
    fn finds_the_memory_cgroup() {
        let hybrid = "9:name=systemd:/\n4:memory:/crius-test/abc\n3:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(
            parse_proc_cgroup(hybrid),
            (Some("/crius-test/abc".into()), Some("/".into()))
        );
        assert_eq!(
            parse_proc_cgroup("0::/kubepods/pod1/ctr\n"),
            (None, Some("/kubepods/pod1/ctr".into()))
        );
    }
}
