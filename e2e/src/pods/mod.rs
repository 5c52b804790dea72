//! Pods and containers: a CNI network per test ([`network`]), request builders with the test
//! defaults ([`requests`]), the runtime RPCs as plain calls ([`flow`]), CRI log parsing
//! ([`cri_log`]) and what a daemon left on the host afterwards ([`leak_check`]).

pub mod cri_log;
pub mod env;
pub mod faults;
pub mod flow;
pub mod leak_check;
pub mod network;
pub mod procs;
pub mod requests;

pub use cri_log::{LogEntry, read_cri_log, read_cri_log_tuples};
pub use env::PodEnv;
pub use flow::{CleanupGuard, PodFlow, cleanup_all, cleanup_pods};
pub use leak_check::Leaks;
pub use network::{TestNetwork, leaked_iptables_rules};
pub use requests::{
    container_config, pod_config, sh, shell_container, sleep_container, unique_uid, with_namespaces,
};
