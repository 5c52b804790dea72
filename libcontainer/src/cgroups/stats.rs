//! Resource usage snapshot, shaped after what CRI `ContainerStats` needs.
//! A section is `None` when its controller is not available for the cgroup.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time consumed (CRI usage_core_nano_seconds).
    pub usage_ns: u64,
    pub user_ns: u64,
    pub system_ns: u64,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Current charge (v1 memory.usage_in_bytes, v2 memory.current).
    pub usage_bytes: u64,
    /// usage minus inactive file pages: what the kubelet evicts on.
    pub working_set_bytes: u64,
    /// Hard limit; `None` when unlimited.
    pub limit_bytes: Option<u64>,
    pub rss_bytes: u64,
    pub cache_bytes: u64,
    pub swap_bytes: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    /// Times the OOM killer ran in this cgroup (when the kernel reports it).
    pub oom_kills: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

/// working set = usage - inactive_file, never negative (cadvisor's rule).
pub(crate) fn working_set(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}
