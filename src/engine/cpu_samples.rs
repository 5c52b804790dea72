//! The CPU samples ContainerStats computes `usage_nano_cores` from: a table keyed by container
//! (or sandbox) id, forgotten with the object like the other tables.

use std::collections::HashMap;
use std::sync::Mutex;

/// CPU samples of each container, for `usage_nano_cores` (a rate needs two). Shared by every
/// caller: the kubelet, metrics-server's scrapes and a `crictl stats` all see a rate over a
/// window of at least [`MIN_WINDOW_NS`], whatever the others asked meanwhile (a per-caller
/// "since the last call" would give two clients 0).
#[derive(Debug, Default)]
pub struct CpuSamples(Mutex<HashMap<String, CpuWindow>>);

/// The shortest window a rate is computed over.
pub const MIN_WINDOW_NS: i64 = 1_000_000_000;

/// `(timestamp ns, cumulative usage ns)` pairs: the sample the rate starts from, and the newest.
#[derive(Debug, Clone, Copy)]
struct CpuWindow {
    start: Option<(i64, u64)>,
    latest: (i64, u64),
}

impl CpuSamples {
    /// Records a reading; the rate over the current window, if there is one. A reading less
    /// than [`MIN_WINDOW_NS`] after the newest sample is measured against the window's start and
    /// not kept, so frequent callers do not shrink the window for the others.
    pub fn rate(&self, id: &str, at: i64, usage_ns: u64) -> Option<u64> {
        let mut samples = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = samples.get_mut(id) else {
            samples.insert(
                id.to_owned(),
                CpuWindow {
                    start: None,
                    latest: (at, usage_ns),
                },
            );
            return None;
        };
        // The second reading ever starts the window, however soon it comes.
        if w.start.is_none() || at - w.latest.0 >= MIN_WINDOW_NS {
            w.start = Some(w.latest);
            w.latest = (at, usage_ns);
        }
        let (t0, u0) = w.start?;
        let dt = u64::try_from(at - t0).ok().filter(|dt| *dt > 0)?;
        // ns of CPU per ns of wall time, in nano-cores.
        Some(((usage_ns.saturating_sub(u0)) as u128 * 1_000_000_000 / dt as u128) as u64)
    }

    pub fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_needs_two_samples() {
        let s = CpuSamples::default();
        assert_eq!(s.rate("c", 1_000_000_000, 0), None);
        // Half a core over one second.
        assert_eq!(s.rate("c", 2_000_000_000, 500_000_000), Some(500_000_000));
        s.forget("c");
        assert_eq!(s.rate("c", 3_000_000_000, 600_000_000), None);
    }

    #[test]
    fn two_callers_close_together_both_see_the_rate() {
        let s = CpuSamples::default();
        const SEC: i64 = 1_000_000_000;
        assert_eq!(s.rate("c", 10 * SEC, 0), None);
        // One core busy throughout. A second caller 10 ms after the first sees the same window.
        assert_eq!(s.rate("c", 11 * SEC, SEC as u64), Some(1_000_000_000));
        let second = s.rate("c", 11 * SEC + SEC / 100, (SEC + SEC / 100) as u64);
        assert_eq!(second, Some(1_000_000_000));
        // Callers every 100 ms: the window stays >= 1 s, the rate stays right.
        for i in 1..=30 {
            let at = 11 * SEC + i * SEC / 10;
            let got = s.rate("c", at, (at - 10 * SEC) as u64).unwrap();
            assert_eq!(got, 1_000_000_000, "call {i}");
        }
    }
}
