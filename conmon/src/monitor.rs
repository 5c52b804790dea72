//! Container and exec mode: set up, detach from the daemon, have the runtime create the container
//! (or exec the process), report its pid, then one poll loop until it exits: output to the log and
//! to attach clients, attach input to stdin, control commands, OOM events. Last, the exit file.
//!
//! Everything that can fail because of the daemon's request (log path, socket paths, pipes) is
//! done before detaching, so the launcher's exit status says whether the monitor is up: after it
//! exited 0, the attach and control sockets accept connections.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime};

use crius_monitor_proto::{ControlRequest, LaunchOptions, Mode, SyncMessage};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{ForkResult, fork, setsid};

use crate::attach::{self, AttachServer, Input};
use crate::child_reaper::{ChildReaper, ExitStatus};
use crate::container_io::{ContainerIo, ReadOutcome, RuntimeStdio};
use crate::control::ControlServer;
use crate::cri_log::{CriLog, Stream};
use crate::exit_file::ExitInfo;
use crate::footprint;
use crate::oom_watcher::OomWatcher;
use crate::own_cgroup;
use crate::runtime::{RuntimeCommands, WorkDir, read_pid_file};
use crate::sync_pipe::SyncPipe;
use crate::terminal::ConsoleSocket;

/// How long `exec` waits for the attach client it starts the process for.
const FIRST_ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long attach clients get to take their last output after the container exited.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// An exec's output is only for its attach client (the daemon, which forwards it as fast as the
/// user reads it): past this much queued, the process's output is not read, so it blocks
/// instead of being cut off. A container's output is not held back (its log must go on).
const EXEC_HIGH_WATER: usize = 256 << 10;
/// How long an exec's client gets to take its last output.
const EXEC_FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Reads of output still buffered after the exit, per stream.
const MAX_FINAL_READS: usize = 1024;
/// After this many milliseconds without an event, the code the events ran is unmapped again
/// (`footprint`).
const RELEASE_AFTER_QUIET_MS: i32 = 2_000;
/// Descriptors the poll set has room for from the start: the child, two outputs, stdin, the
/// two listeners, the OOM notifier and a few clients.
const POLL_SET_CAPACITY: usize = 16;

pub fn run(opts: &LaunchOptions) -> i32 {
    let mut sync = match SyncPipe::from_fd(opts.sync_fd) {
        Ok(sync) => sync,
        Err(e) => {
            eprintln!("crius-monitor: {e}");
            return 1;
        }
    };
    let result = Setup::new(opts).and_then(|setup| {
        detach(opts.sync_fd)?;
        monitor(opts, setup, &mut sync)
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("crius-monitor: {}: {e}", opts.id);
            sync.error(&e);
            1
        }
    }
}

/// What is prepared before detaching.
struct Setup {
    log: Option<CriLog>,
    attach: Option<AttachServer>,
    control: Option<ControlServer>,
    console: Option<ConsoleSocket>,
    work: WorkDir,
    io: ContainerIo,
    runtime_stdio: RuntimeStdio,
}

impl Setup {
    fn new(opts: &LaunchOptions) -> Result<Self, String> {
        let log = match &opts.log_path {
            Some(path) => Some(
                CriLog::open(path, opts.max_log_line())
                    .map_err(|e| format!("opening log {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let attach = match &opts.attach_socket {
            Some(path) => Some(AttachServer::bind(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let control = match &opts.control_socket {
            Some(path) => Some(ControlServer::bind(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let work = WorkDir::create().map_err(|e| format!("creating a work directory: {e}"))?;
        let console = match opts.terminal {
            true => {
                Some(ConsoleSocket::bind(&work.join("console.sock")).map_err(|e| e.to_string())?)
            }
            false => None,
        };
        let (io, runtime_stdio) = match opts.terminal {
            true => ContainerIo::terminal(opts.stdin),
            false => ContainerIo::pipes(opts.stdin),
        }
        .map_err(|e| format!("creating stdio pipes: {e}"))?;
        Ok(Setup {
            log,
            attach,
            control,
            console,
            work,
            io,
            runtime_stdio,
        })
    }
}

/// Leaves the daemon: the launcher exits at once (the daemon reaps it), the monitor goes on in a
/// new session, so neither the daemon's death nor signals to its process group reach it.
fn detach(sync_fd: i32) -> Result<(), String> {
    // SAFETY: no threads exist yet; the child continues with a copy of this single thread.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => {
            // SAFETY: _exit ends the launcher without running destructors (which would remove
            // the sockets the monitor now owns).
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Child) => {}
        Err(e) => return Err(format!("fork: {e}")),
    }
    setsid().map_err(|e| format!("setsid: {e}"))?;
    // Hold nothing of the daemon's: its pipes would otherwise stay open as long as we live.
    // stderr stays, for the daemon to point at a file.
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    if sync_fd != 0 {
        nix::unistd::dup2_stdin(&null).map_err(|e| format!("redirecting stdin: {e}"))?;
    }
    if sync_fd != 1 {
        nix::unistd::dup2_stdout(&null).map_err(|e| format!("redirecting stdout: {e}"))?;
    }
    Ok(())
}

fn monitor(opts: &LaunchOptions, setup: Setup, sync: &mut SyncPipe) -> Result<(), String> {
    let Setup {
        log,
        mut attach,
        control,
        console,
        work,
        mut io,
        runtime_stdio,
    } = setup;
    let mut reaper = ChildReaper::new().map_err(|e| format!("setting up the child reaper: {e}"))?;

    let pid_file = work.join("pid");
    let console_path = console.as_ref().map(|c| c.path());
    let mut cmd = match &opts.mode {
        Mode::Container { bundle } => {
            opts.runtime
                .create(&opts.id, bundle, &pid_file, console_path)
        }
        Mode::Exec { process } => {
            // Output of an exec goes only to attach clients: start it once there is one.
            if let Some(attach) = attach.as_mut()
                && !attach.wait_for_client(FIRST_ATTACH_TIMEOUT)
            {
                return Err("no attach client connected".into());
            }
            opts.runtime
                .exec(&opts.id, process, &pid_file, console_path)
        }
        Mode::ExecSync { .. } => return Err("exec-sync does not monitor".into()),
    };
    cmd.stdin(runtime_stdio.stdin)
        .stdout(runtime_stdio.stdout)
        .stderr(runtime_stdio.stderr);
    let runtime_pid = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", opts.runtime.path.display()))?
        .id() as i32;
    // Our copies of the runtime's stdio must go, or the pipes never reach end of file.
    drop(cmd);

    let mut runtime_status = None;
    if let Some(console) = &console {
        // The runtime sends the pty master, then exits; it may do both before we look.
        loop {
            let mut fds = [
                PollFd::new(console.fd(), PollFlags::POLLIN),
                PollFd::new(reaper.fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, PollTimeout::NONE);
            reaper.reap();
            runtime_status = reaper.take(runtime_pid);
            // The listener is non-blocking: this fails at once while nobody connected.
            if let Ok(master) = console.receive_master() {
                io.set_master(master)
                    .map_err(|e| format!("using the terminal: {e}"))?;
                break;
            }
            if runtime_status.is_some() {
                break;
            }
        }
    }
    let runtime_status = runtime_status.or_else(|| reaper.wait_for(runtime_pid, None));
    if runtime_status != Some(ExitStatus::Exited(0)) {
        let verb = match opts.mode {
            Mode::Exec { .. } => "exec",
            _ => "create",
        };
        let output = io.runtime_error_text();
        return Err(format!(
            "runtime {verb} failed ({runtime_status:?}): {output}"
        ));
    }
    if console.is_some() && io.output_fd(Stream::Stdout).is_none() {
        return Err("the runtime did not send a terminal".into());
    }
    let pid = read_pid_file(&pid_file).map_err(|e| format!("reading the container pid: {e}"))?;
    drop(console);
    drop(work);
    sync.send(&SyncMessage::started(pid));
    if let (Mode::Container { .. }, Some(cgroup)) = (&opts.mode, &opts.cgroup)
        && let Err(e) = own_cgroup::join(cgroup)
    {
        // Costs only the protection from a service manager's stop of the daemon.
        eprintln!(
            "crius-monitor: {}: moving into cgroup {cgroup}: {e}",
            opts.id
        );
    }

    let oom = match opts.mode {
        Mode::Container { .. } => match OomWatcher::for_pid(pid) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                eprintln!(
                    "crius-monitor: {}: not watching for OOM kills: {e}",
                    opts.id
                );
                None
            }
        },
        _ => None,
    };
    let mut monitor = Monitor {
        opts,
        reaper,
        io,
        log,
        attach,
        control,
        oom,
        buf: vec![0u8; opts.max_log_line().clamp(8192, 64 * 1024)],
        poll_set: PollSet {
            fds: Vec::with_capacity(POLL_SET_CAPACITY),
            tokens: Vec::with_capacity(POLL_SET_CAPACITY),
        },
    };
    footprint::release_code_pages();
    let status = monitor.run_until_exit(pid)?;
    monitor.finish(status, SystemTime::now());
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Token {
    Child,
    Output(Stream),
    Stdin,
    AttachListener,
    Attach(usize),
    ControlListener,
    Control(usize),
    Oom,
}

struct Monitor<'a> {
    opts: &'a LaunchOptions,
    reaper: ChildReaper,
    io: ContainerIo,
    log: Option<CriLog>,
    attach: Option<AttachServer>,
    control: Option<ControlServer>,
    oom: Option<OomWatcher>,
    buf: Vec<u8>,
    poll_set: PollSet,
}

/// The descriptors of one `poll(2)` and what each stands for, kept from one round to the next
/// so that a round allocates nothing.
#[derive(Default)]
struct PollSet {
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
}

impl Monitor<'_> {
    fn run_until_exit(&mut self, pid: i32) -> Result<ExitStatus, String> {
        // Whether code ran since the pages were last given back (see `footprint`).
        let mut pages_touched = false;
        loop {
            if let Some(status) = self.reaper.take(pid) {
                return Ok(status);
            }
            // -1: no timeout.
            let timeout_ms = match pages_touched {
                true => RELEASE_AFTER_QUIET_MS,
                false => -1,
            };
            let mut set = std::mem::take(&mut self.poll_set);
            let polled = self.wait(&mut set, timeout_ms);
            if let Ok(Some(0)) = polled {
                footprint::release_code_pages();
                pages_touched = false;
            }
            for (token, fd) in set.tokens.iter().zip(&set.fds) {
                let events = PollFlags::from_bits_truncate(fd.revents);
                if !events.is_empty() {
                    self.handle(*token, events);
                    pages_touched = true;
                }
            }
            self.poll_set = set;
            polled?;
            self.drop_dead_clients();
        }
    }

    /// Polls everything the monitor listens to, for at most `timeout_ms` (-1: no limit); `set`
    /// says afterwards what is ready. Returns how many descriptors are (`None` when a signal
    /// interrupted).
    fn wait(&self, set: &mut PollSet, timeout_ms: i32) -> Result<Option<usize>, String> {
        set.fds.clear();
        set.tokens.clear();
        let mut add = |token: Token, fd: BorrowedFd<'_>, events: PollFlags| {
            set.tokens.push(token);
            set.fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: events.bits(),
                revents: 0,
            });
        };
        let readable = PollFlags::POLLIN;
        add(Token::Child, self.reaper.fd(), readable);
        let exec = matches!(self.opts.mode, Mode::Exec { .. });
        let held_back = exec
            && self
                .attach
                .as_ref()
                .is_some_and(|a| a.max_backlog() > EXEC_HIGH_WATER);
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(fd) = self.io.output_fd(stream).filter(|_| !held_back) {
                add(Token::Output(stream), fd, readable);
            }
        }
        if self.io.stdin_blocked()
            && let Some(fd) = self.io.stdin_fd()
        {
            add(Token::Stdin, fd, PollFlags::POLLOUT);
        }
        if let Some(attach) = &self.attach {
            add(Token::AttachListener, attach.listener_fd(), readable);
            for (i, client) in attach.clients.iter().enumerate() {
                let mut events = PollFlags::empty();
                if self.io.stdin_accepts() {
                    events |= PollFlags::POLLIN;
                }
                if client.wants_write() {
                    events |= PollFlags::POLLOUT;
                }
                add(Token::Attach(i), client.fd(), events);
            }
        }
        if let Some(control) = &self.control {
            add(Token::ControlListener, control.listener_fd(), readable);
            for (i, client) in control.clients.iter().enumerate() {
                add(Token::Control(i), client.fd(), readable);
            }
        }
        if let Some(oom) = &self.oom {
            add(Token::Oom, oom.fd(), readable);
        }
        // nix's `poll` takes `PollFd`s, which borrow their descriptors: they could not be kept
        // in `set` from one round to the next, and a fresh vector each round is an allocation
        // (and its code paged in) on every wake-up of an idle monitor.
        let len = libc::nfds_t::try_from(set.fds.len()).map_err(|e| e.to_string())?;
        // SAFETY: `set.fds` is `len` initialized pollfds; every descriptor in it belongs to
        // `self`, borrowed for this call.
        let n = unsafe { libc::poll(set.fds.as_mut_ptr(), len, timeout_ms) };
        match Errno::result(n) {
            Ok(n) => Ok(Some(n as usize)),
            Err(Errno::EINTR) => Ok(None),
            Err(e) => Err(format!("poll: {e}")),
        }
    }

    fn handle(&mut self, token: Token, events: PollFlags) {
        let hangup = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        match token {
            Token::Child => self.reaper.reap(),
            Token::Output(stream) => {
                self.pump(stream);
            }
            Token::Stdin => self.io.flush_stdin(),
            Token::AttachListener => {
                if let Some(attach) = self.attach.as_mut() {
                    attach.accept();
                }
            }
            Token::Attach(i) => {
                let Some(client) = self.attach.as_mut().and_then(|a| a.clients.get_mut(i)) else {
                    return;
                };
                if events.contains(PollFlags::POLLOUT) {
                    client.flush();
                }
                if events.intersects(hangup) {
                    for input in client.read_inputs() {
                        self.apply(input);
                    }
                }
            }
            Token::ControlListener => {
                if let Some(control) = self.control.as_mut() {
                    control.accept();
                }
            }
            Token::Control(i) => {
                let Some(commands) = self
                    .control
                    .as_mut()
                    .and_then(|c| c.clients.get_mut(i))
                    .map(|client| client.read_commands())
                else {
                    return;
                };
                for command in commands {
                    let result = command.and_then(|c| self.execute(c));
                    if let Some(client) = self.control.as_mut().and_then(|c| c.clients.get_mut(i)) {
                        client.reply(result);
                    }
                }
            }
            Token::Oom => {
                if let Some(oom) = self.oom.as_mut() {
                    oom.handle_event();
                }
            }
        }
    }

    /// One read of one output: to the log and to every attach client. False when nothing came.
    fn pump(&mut self, stream: Stream) -> bool {
        let ReadOutcome::Data(n) = self.io.read(stream, &mut self.buf) else {
            return false;
        };
        let data = &self.buf[..n];
        if let Some(log) = self.log.as_mut()
            && let Err(e) = log.write(stream, data, SystemTime::now())
        {
            eprintln!("crius-monitor: {}: writing the log: {e}", self.opts.id);
        }
        if let Some(attach) = self.attach.as_mut() {
            let kind = match stream {
                Stream::Stdout => attach::STDOUT,
                Stream::Stderr => attach::STDERR,
            };
            attach.broadcast(kind, data);
        }
        true
    }

    fn apply(&mut self, input: Input) {
        match input {
            Input::Stdin(data) => self.io.queue_stdin(&data),
            Input::CloseStdin => {
                if self.opts.stdin_once {
                    self.io.close_stdin();
                }
            }
            Input::Resize { rows, cols } => {
                if let Err(e) = self.io.resize(rows, cols) {
                    eprintln!("crius-monitor: {}: {e}", self.opts.id);
                }
            }
        }
    }

    fn execute(&mut self, command: ControlRequest) -> Result<(), String> {
        match command {
            ControlRequest::ReopenLog => match self.log.as_mut() {
                Some(log) => log.reopen().map_err(|e| format!("reopening the log: {e}")),
                None => Err("no log file".into()),
            },
            ControlRequest::Resize { rows, cols } => self.io.resize(rows, cols),
        }
    }

    /// Forgets clients that hung up; with `stdin_once`, one that used stdin closes it.
    fn drop_dead_clients(&mut self) {
        if let Some(attach) = self.attach.as_mut() {
            let closes_stdin = attach.clients.iter().any(|c| c.dead && c.used_stdin);
            attach.clients.retain(|c| !c.dead);
            if closes_stdin && self.opts.stdin_once {
                self.io.close_stdin();
            }
        }
        if let Some(control) = self.control.as_mut() {
            control.clients.retain(|c| !c.dead);
        }
    }

    /// After the exit: the output still in the pipes, then the exit file, then hang up.
    fn finish(mut self, status: ExitStatus, finished_at: SystemTime) {
        // Bounded: a process outside the container's pid namespace may still hold the pipe.
        for stream in [Stream::Stdout, Stream::Stderr] {
            for _ in 0..MAX_FINAL_READS {
                if !self.pump(stream) {
                    break;
                }
            }
        }
        if let Some(log) = &self.log {
            let _ = log.sync();
        }
        if let Some(attach) = self.attach.as_mut() {
            let timeout = match self.opts.mode {
                Mode::Exec { .. } => EXEC_FINAL_FLUSH_TIMEOUT,
                _ => FINAL_FLUSH_TIMEOUT,
            };
            attach.finish(timeout);
        }
        let info = ExitInfo {
            status,
            oom_killed: self.oom.as_mut().is_some_and(|oom| oom.oom_killed()),
            finished_at,
        };
        if let Some(path) = &self.opts.exit_file
            && let Err(e) = info.write(path)
        {
            eprintln!(
                "crius-monitor: {}: writing the exit file {}: {e}",
                self.opts.id,
                path.display()
            );
        }
    }
}
