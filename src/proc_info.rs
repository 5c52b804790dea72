//! Process identity that survives pid reuse: a pid together with its start time (clock ticks since
//! boot, field 22 of `/proc/<pid>/stat`). The daemon records both for every container and monitor
//! process, so after a restart it never takes (or signals) a new process that got an old pid.

use std::io;

/// Fields of `/proc/<pid>/stat` after the command name: state, then the rest.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// The command name (field 2) is in parentheses and may itself contain spaces and parentheses,
/// so the fields start after the last `)`.
fn parse_stat(stat: &str) -> Option<Vec<String>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field 3 (state) is the first after the name; field 22 (starttime) the 20th.
const STATE: usize = 0;
const STARTTIME: usize = 22 - 3;

fn start_time_of(fields: &[String]) -> Option<u64> {
    fields.get(STARTTIME)?.parse().ok()
}

/// The start time of `pid` (clock ticks since boot), or `None` if there is no such process.
pub fn start_time(pid: i32) -> Option<u64> {
    start_time_of(&stat_fields(pid)?)
}

/// A process named `name` (`/proc/<pid>/comm`) runs as `pid`. For processes whose start time
/// is not recorded; the name guards against a reused pid.
pub fn is_named(pid: i32, name: &str) -> bool {
    pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end() == name)
}

/// The process exists, is not a zombie (or dead), and has this start time.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    let Some(fields) = stat_fields(pid) else {
        return false;
    };
    let running = !matches!(
        fields.get(STATE).map(String::as_str),
        Some("Z" | "X" | "x") | None
    );
    running && start_time_of(&fields) == Some(start_time)
}

/// Sends `signal` to `pid` only if it is still the process that started at `start_time`.
/// `Ok(true)` when sent (a zombie with that start time counts: the signal is harmless),
/// `Ok(false)` when the process is gone or the pid belongs to another process.
///
/// A pidfd pins the process: once opened, checking the start time and then signalling through
/// it cannot hit a process that took the pid in between. Without pidfds (Linux < 5.3) the check
/// and `kill(2)` leave a small window.
pub fn signal_if_same(pid: i32, start_time: u64, signal: i32) -> io::Result<bool> {
    if pid <= 0 {
        return Ok(false);
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            Some(libc::ENOSYS) => signal_by_pid(pid, start_time, signal),
            _ => Err(err),
        };
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // The pidfd was opened after `start_time` was recorded; if the pid shows that start time now,
    // the process the pidfd refers to is that one.
    if self::start_time(pid) != Some(start_time) {
        return Ok(false);
    }
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(err),
    }
}

fn signal_by_pid(pid: i32, start_time: u64, signal: i32) -> io::Result<bool> {
    if self::start_time(pid) != Some(start_time) {
        return Ok(false);
    }
    // SAFETY: kill(2) with a positive pid and a signal number.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn processes_are_recognised_by_name() {
        let own = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(is_named(std::process::id() as i32, own.trim_end()));
        assert!(!is_named(std::process::id() as i32, "crius-monitor-x"));
        assert!(!is_named(0, own.trim_end()));
        assert!(!is_named(i32::MAX, own.trim_end()));
    }

    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let stat = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let fields = parse_stat(stat).unwrap();
        assert_eq!(fields[STATE], "S");
        assert_eq!(start_time_of(&fields), Some(987654));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(start_time_of(&parse_stat("1 (x) S 1").unwrap()), None);
    }

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(start > 0);
        assert_eq!(start_time(me), Some(start));
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        // Signal 0 checks without sending anything.
        assert!(signal_if_same(me, start, 0).unwrap());
        assert!(!signal_if_same(me, start + 1, 0).unwrap());
    }

    #[test]
    fn bad_pids() {
        for pid in [0, -1, i32::MAX] {
            assert_eq!(start_time(pid), None);
            assert!(!is_alive(pid, 1));
            assert!(!signal_if_same(pid, 1, 0).unwrap());
        }
    }

    /// Waits until `pid` shows `state` in /proc.
    fn wait_state(pid: i32, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat_fields(pid).and_then(|f| f.first().cloned()).as_deref() != Some(state) {
            assert!(
                Instant::now() < deadline,
                "{pid} never reached state {state}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn child_lives_turns_zombie_and_goes() {
        let mut child = Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = start_time(pid).unwrap();
        assert!(is_alive(pid, start));
        assert!(!signal_if_same(pid, start + 1, libc::SIGKILL).unwrap());
        assert!(is_alive(pid, start), "a wrong start time must not kill");
        assert!(signal_if_same(pid, start, libc::SIGKILL).unwrap());
        // Killed but not reaped: a zombie, which is not alive.
        wait_state(pid, "Z");
        assert_eq!(start_time(pid), Some(start));
        assert!(!is_alive(pid, start));
        child.wait().unwrap();
        assert!(!is_alive(pid, start));
        assert!(!signal_if_same(pid, start, libc::SIGKILL).unwrap());
    }

    #[test]
    fn fallback_without_pidfd() {
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let pid = child.id() as i32;
        let start = start_time(pid).unwrap();
        assert!(!signal_by_pid(pid, start + 1, libc::SIGKILL).unwrap());
        assert!(signal_by_pid(pid, start, libc::SIGKILL).unwrap());
        child.wait().unwrap();
        assert!(!signal_by_pid(pid, start, libc::SIGKILL).unwrap());
    }
}
