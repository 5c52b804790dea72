//! Latency samples and nearest-rank percentiles.

use std::time::Instant;

use serde_json::{Value, json};

/// Latency samples of one step, in seconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    /// Adds the time since `started`.
    pub fn push(&mut self, started: Instant) {
        self.0.push(started.elapsed().as_secs_f64());
    }

    /// Adds `secs`.
    pub fn push_secs(&mut self, secs: f64) {
        self.0.push(secs);
    }

    /// Nearest-rank percentile, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.0, p) * 1e3
    }

    /// `{"n", "p50_ms", "p99_ms", "max_ms", "ms"}`; `ms` is every sample in the order taken,
    /// for reading a tail (which run it was) from a kept run's JSON.
    pub fn json(&self) -> Value {
        let ms: Vec<f64> = self.0.iter().map(|s| (s * 1e6).round() / 1e3).collect();
        json!({
            "n": self.0.len(),
            "p50_ms": self.percentile_ms(50.0),
            "p99_ms": self.percentile_ms(99.0),
            "max_ms": self.percentile_ms(100.0),
            "ms": ms,
        })
    }
}

/// Nearest-rank percentile of `values` (0 when empty).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn samples_report_milliseconds() {
        let mut s = Samples::default();
        for secs in [0.010, 0.030, 0.020] {
            s.push_secs(secs);
        }
        let j = s.json();
        assert_eq!(j["n"], 3);
        assert!((j["p50_ms"].as_f64().unwrap() - 20.0).abs() < 1e-9);
        assert!((j["max_ms"].as_f64().unwrap() - 30.0).abs() < 1e-9);
    }
}
