//! crius-monitor: the per-container monitor (crius's conmon). The daemon starts one for each
//! container and each exec; it detaches, has the OCI runtime create the container, stays its
//! parent, holds its stdio, writes its CRI log, serves attach and control sockets, notices OOM
//! kills, and writes the exit file. See docs/monitor.md.

mod attach;
mod child_reaper;
mod container_io;
mod control;
mod cri_log;
mod exec_sync;
mod exit_file;
mod footprint;
mod monitor;
mod oom_watcher;
mod own_cgroup;
mod runtime;
mod sync_pipe;
mod terminal;

use crius_monitor_proto::launch::{self, Mode, Parsed};

fn main() {
    let code = match launch::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => {
            print!("{}", launch::USAGE);
            0
        }
        Ok(Parsed::Version) => {
            println!("crius-monitor {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Parsed::Run(opts)) => match &opts.mode {
            Mode::ExecSync {
                process,
                timeout,
                output_limit,
            } => exec_sync::run(&opts, process, *timeout, *output_limit),
            Mode::Container { .. } | Mode::Exec { .. } => monitor::run(&opts),
        },
        Err(e) => {
            eprintln!("crius-monitor: {e}\n\n{}", launch::USAGE);
            2
        }
    };
    std::process::exit(code);
}
