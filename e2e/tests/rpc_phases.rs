//! Where time goes: a daemon logging at debug level writes, for each lifecycle RPC, one event
//! with its phases and their durations (docs/performance.md, "Where time goes"); at info level
//! it writes none.

use std::collections::BTreeMap;

use crius_e2e::pods::{PodEnv, pod_config, sleep_container};

/// The `phases="…"` field of each `<rpc> phases` event in `log`, by RPC.
fn phase_lines(log: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in log.lines() {
        let Some((head, field)) = line.split_once(" phases phases=\"") else {
            continue;
        };
        let rpc = head.rsplit(' ').next().unwrap_or_default().to_string();
        let phases = field.split('"').next().unwrap_or_default().to_string();
        out.entry(rpc).or_default().push(phases);
    }
    out
}

/// The laps of a phases field (name, milliseconds), the parts in brackets left out, and the
/// total.
fn laps(phases: &str) -> (Vec<(String, f64)>, f64) {
    let ms = |v: &str| -> f64 {
        v.strip_suffix("ms")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a duration: {v:?} in {phases}"))
    };
    let mut laps = Vec::new();
    let mut total = None;
    let mut depth = 0;
    for word in phases.split(' ') {
        let starts_part = depth > 0;
        depth += word.matches('[').count();
        depth -= word.matches(']').count();
        if starts_part {
            continue;
        }
        let lap = word.split('[').next().unwrap_or_default();
        let (name, value) = lap.split_once('=').unwrap_or_else(|| panic!("{phases}"));
        if name == "total" {
            total = Some(ms(value));
        } else {
            laps.push((name.to_string(), ms(value)));
        }
    }
    (
        laps,
        total.unwrap_or_else(|| panic!("no total in {phases}")),
    )
}

/// Asserts that `rpc` logged one phases event naming each of `wanted` (laps, or parts in
/// brackets), whose laps add up to no more than its total.
fn assert_phases(all: &BTreeMap<String, Vec<String>>, rpc: &str, wanted: &[&str]) {
    let lines = all
        .get(rpc)
        .unwrap_or_else(|| panic!("no phases logged for {rpc}: {all:#?}"));
    assert_eq!(lines.len(), 1, "{rpc}: {lines:?}");
    let phases = &lines[0];
    eprintln!("{rpc}: {phases}");
    for name in wanted {
        assert!(
            phases.contains(&format!("{name}=")),
            "{rpc}: no {name} in {phases}"
        );
    }
    let (laps, total) = laps(phases);
    let sum: f64 = laps.iter().map(|(_, ms)| ms).sum();
    // Each lap is rounded to a tenth of a millisecond.
    assert!(
        sum <= total + 0.1 * laps.len() as f64,
        "{rpc}: laps {sum}ms > total {total}ms in {phases}"
    );
}

#[tokio::test]
async fn a_debug_daemon_logs_the_phases_of_each_lifecycle_rpc() {
    let env = PodEnv::start_with(|b| b.log_level("debug")).await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("phases", &env.log_dir("phases"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let ctr = flow
        .create_container(&pod_id, &sleep_container("sleeper", &env.image, 600), &pod)
        .await
        .unwrap();
    flow.start_container(&ctr).await.unwrap();
    flow.stop_container(&ctr, 0).await.unwrap();
    flow.remove_container(&ctr).await.unwrap();
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();

    let all = phase_lines(&env.crius.log());
    assert_phases(
        &all,
        "RunPodSandbox",
        &[
            "state",
            "ns",
            "files",
            // The pause (this pod shares its PID namespace) starts while CNI runs.
            "net+pause",
            "cni.bridge",
            "cni.portmap",
            "cni.cache",
            "hosts",
            "pause.spec",
            "monitor.spawn",
            "runtime.create",
            "runtime.start",
        ],
    );
    assert_phases(
        &all,
        "CreateContainer",
        &["image", "state", "rootfs", "spec"],
    );
    assert_phases(
        &all,
        "StartContainer",
        &["monitor.spawn", "runtime.create", "runtime.start", "state"],
    );
    assert_phases(
        &all,
        "StopContainer",
        &[
            "stop.kill",
            "stop.exit",
            "runtime.delete",
            "unmount",
            "layers",
        ],
    );
    // The runtime delete, the unmounts and the layer hold's end were done at the stop; the
    // directories and the record go after the answer.
    assert_phases(&all, "RemoveContainer", &["state"]);
    assert_phases(
        &all,
        "StopPodSandbox",
        &["containers", "net", "cni.bridge", "pause.stop", "state"],
    );
    assert_phases(
        &all,
        "RemovePodSandbox",
        &["containers", "net", "pause.stop", "host", "state"],
    );
    // Queries record nothing.
    assert!(!all.contains_key("Version"), "{all:#?}");
}

#[tokio::test]
async fn an_info_daemon_logs_no_phases() {
    let env = PodEnv::start_with(|b| b.log_level("info")).await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("quiet", &env.log_dir("quiet"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let log = env.crius.log();
    assert!(log.contains("RunPodSandbox done"), "{log}");
    assert!(phase_lines(&log).is_empty(), "{log}");
}
