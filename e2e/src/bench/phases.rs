//! `pod-bench --phases`: where each lifecycle RPC's time went, from the phase events the daemon
//! logs at debug level (docs/performance.md, "Where time goes"): the median of every lap, per
//! RPC, over the run.
//!
//! A phase event carries `phases="state=1.1ms ns=1.6ms net+pause=29.9ms[cni.bridge=9.4ms …]
//! state=0.9ms total=34.6ms"`. Laps are the `name=duration` pairs outside brackets; a name that
//! comes back in one event (CreateContainer's two `state` laps) is numbered by its order
//! (`state`, `state#2`). Parts in brackets are left out: they are inside their lap.

use std::collections::BTreeMap;

use super::stats::percentile;

/// Per RPC, per lap in the order first seen, the durations in ms.
#[derive(Debug, Default)]
pub struct PhaseLog {
    rpcs: BTreeMap<String, Vec<(String, Vec<f64>)>>,
}

impl PhaseLog {
    /// Reads every phase event of a daemon's log.
    pub fn parse(log: &str) -> PhaseLog {
        let mut out = PhaseLog::default();
        for line in log.lines() {
            let Some((rpc, laps)) = event(line) else {
                continue;
            };
            let entry = out.rpcs.entry(rpc.to_string()).or_default();
            for (name, ms) in laps {
                match entry.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, values)) => values.push(ms),
                    None => entry.push((name, vec![ms])),
                }
            }
        }
        out
    }

    /// One line per RPC: `RPC (n events): lap=median … ` in ms.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (rpc, laps) in &self.rpcs {
            let n = laps.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
            out.push_str(&format!("{rpc} ({n}), medians:"));
            for (name, values) in laps {
                out.push_str(&format!(" {name}={:.2}", percentile(values, 50.0)));
            }
            out.push_str(" ms\n");
        }
        out
    }
}

/// `(rpc, laps)` of a line holding a phase event.
fn event(line: &str) -> Option<(&str, Vec<(String, f64)>)> {
    let head = line.find(" phases phases=\"")?;
    let rpc = line[..head].rsplit(' ').next()?;
    let body = &line[head + " phases phases=\"".len()..];
    let body = &body[..body.find('"')?];
    let mut laps: Vec<(String, f64)> = Vec::new();
    let mut depth = 0usize;
    let mut outside = String::new();
    for c in body.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    for pair in outside.split_whitespace() {
        let (name, value) = pair.split_once('=')?;
        let ms = duration_ms(value)?;
        let seen = laps
            .iter()
            .filter(|(n, _)| n == name || n.starts_with(&format!("{name}#")))
            .count();
        let name = match seen {
            0 => name.to_string(),
            k => format!("{name}#{}", k + 1),
        };
        laps.push((name, ms));
    }
    Some((rpc.trim_end_matches(':'), laps))
}

/// `1.5ms`, `250µs`, `2.1s` (Rust's `Duration` debug forms) in ms.
fn duration_ms(text: &str) -> Option<f64> {
    let units = [
        ("ms", 1.0),
        ("µs", 1e-3),
        ("us", 1e-3),
        ("ns", 1e-6),
        ("s", 1e3),
    ];
    units.iter().find_map(|(unit, scale)| {
        text.strip_suffix(unit)
            .and_then(|n| n.parse::<f64>().ok())
            .map(|n| n * scale)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_are_read_parts_left_out_and_repeats_numbered() {
        let log = "\
2026-12-07T15:00:00Z DEBUG rpc{rpc=\"CreateContainer\" id=4}: crius::phases: CreateContainer phases phases=\"image=0.4ms state=0.6ms rootfs=1.7ms runtime.create=13.7ms state=0.8ms total=17.2ms\"
2026-12-07T15:00:00Z DEBUG rpc{rpc=\"RunPodSandbox\" id=3}: crius::phases: RunPodSandbox phases phases=\"state=1.1ms net+pause=29.9ms[cni.bridge=9.4ms cni.portmap=3.0ms] total=31ms\"
2026-12-07T15:00:01Z INFO unrelated line
2026-12-07T15:00:02Z DEBUG rpc{rpc=\"CreateContainer\" id=9}: crius::phases: CreateContainer phases phases=\"image=600µs state=0.4ms rootfs=1.5ms runtime.create=4.1ms state=1.0ms total=7.6ms\"
";
        let parsed = PhaseLog::parse(log);
        let create = &parsed.rpcs["CreateContainer"];
        let names: Vec<&str> = create.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "image",
                "state",
                "rootfs",
                "runtime.create",
                "state#2",
                "total"
            ]
        );
        assert_eq!(create[0].1, vec![0.4, 0.6]);
        let run = &parsed.rpcs["RunPodSandbox"];
        assert_eq!(run[1], ("net+pause".to_string(), vec![29.9]));
        assert_eq!(run.len(), 3);
        let text = parsed.render();
        assert!(
            text.contains("CreateContainer (2), medians: image=0.40"),
            "{text}"
        );
        assert!(text.contains("runtime.create=4.10"), "{text}");
    }
}
