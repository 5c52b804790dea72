//! The command line: no subcommand runs the daemon; `config` prints the effective configuration;
//! `version` prints versions. Flag names follow cri-o's.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigSources, LogLevel, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "crius",
    version,
    about = "A Kubernetes container runtime (CRI) in Rust"
)]
pub struct Cli {
    /// Main configuration file.
    #[arg(long, global = true, default_value = "/etc/crius/crius.toml")]
    config: PathBuf,
    /// Directory of drop-in configuration files (*.toml, applied in name order).
    #[arg(long, global = true, default_value = "/etc/crius/crius.d")]
    config_dir: PathBuf,
    /// Path of the CRI unix socket.
    #[arg(long, global = true)]
    listen: Option<PathBuf>,
    /// Directory for persistent state (images, ...).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Directory for volatile state.
    #[arg(long, global = true)]
    runroot: Option<PathBuf>,
    /// error, warn, info, debug or trace.
    #[arg(long, global = true)]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the effective configuration (defaults merged with files and flags) as TOML.
    Config,
    /// Print crius' version and the CRI API version it serves.
    Version,
    /// The runc-compatible OCI runtime: `crius oci [--root DIR] [--log FILE]
    /// [--log-format text|json] <create|start|state|kill|delete|exec|update|pause|resume|features>`.
    #[command(disable_help_flag = true)]
    Oci {
        /// runc's own global flags and command, parsed by `crius oci` itself.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

impl Cli {
    fn load_config(&self) -> Result<Config, crate::config::ConfigError> {
        let sources = ConfigSources {
            main: self.config.clone(),
            drop_in_dir: self.config_dir.clone(),
        };
        let overrides = Overrides {
            listen: self.listen.clone(),
            root: self.root.clone(),
            runroot: self.runroot.clone(),
            log_level: self.log_level,
        };
        Config::load(&sources, &overrides)
    }
}

pub fn main() -> ExitCode {
    // `crius oci ...` takes runc's global flags (its `--root` is the state dir, not the daemon's
    // root), so it is dispatched before the daemon's parser sees them. It stays single-threaded:
    // no runtime, no logging setup.
    let mut argv = std::env::args_os();
    if argv.nth(1).is_some_and(|a| a == "oci") {
        return crate::oci_cli::main(argv.collect());
    }
    let cli = Cli::parse();
    if let Some(Command::Oci { args }) = cli.command {
        return crate::oci_cli::main(args);
    }
    if let Some(Command::Version) = cli.command {
        println!("crius version {}", env!("CARGO_PKG_VERSION"));
        println!("CRI API version {}", crate::api::API_VERSION);
        return ExitCode::SUCCESS;
    }
    let config = match cli.load_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("crius: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Config) => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        _ => crate::daemon::run(config),
    }
}
