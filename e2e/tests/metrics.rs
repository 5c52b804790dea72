//! Metrics against the real daemon: `ListPodSandboxMetrics` reports what the containers really
//! did (memory they hold, bytes they sent over the pod network) under labels its
//! `ListMetricDescriptors` describe, and the Prometheus endpoint (`[metrics] enable`) counts and
//! times the calls of concurrent clients, pulls, and pods and containers by state.

use std::collections::HashMap;
use std::time::Duration;

use crius_e2e::cri::api::{
    LinuxContainerConfig, LinuxContainerResources, ListMetricDescriptorsRequest,
    ListPodSandboxMetricsRequest, Metric, PodSandboxMetrics, StreamPodSandboxMetricsRequest,
};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container, sleep_container};
use crius_e2e::util::free_port;
use futures::StreamExt;

const MIB: u64 = 1024 * 1024;
const SECOND: Duration = Duration::from_secs(1);

async fn pod_metrics(flow: &mut PodFlow) -> Vec<PodSandboxMetrics> {
    flow.client
        .list_pod_sandbox_metrics(ListPodSandboxMetricsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pod_metrics
}

/// The value of family `name` in `metrics` whose label `key` (per `keys`) is `value`.
fn value_of(
    metrics: &[Metric],
    keys: &HashMap<String, Vec<String>>,
    name: &str,
    key: &str,
    value: &str,
) -> Option<u64> {
    let at = keys.get(name)?.iter().position(|k| k == key)?;
    metrics
        .iter()
        .find(|m| m.name == name && m.label_values.get(at).map(String::as_str) == Some(value))
        .and_then(|m| m.value)
        .map(|v| v.value)
}

async fn descriptor_keys(flow: &mut PodFlow) -> HashMap<String, Vec<String>> {
    flow.client
        .list_metric_descriptors(ListMetricDescriptorsRequest {})
        .await
        .unwrap()
        .into_inner()
        .descriptors
        .into_iter()
        .map(|d| (d.name, d.label_keys))
        .collect()
}

#[tokio::test]
async fn a_container_holding_50_mib_shows_it_in_its_working_set() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("mem", &env.log_dir("mem"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    // 55 MiB in the pod's /dev/shm tmpfs: shared memory, charged to the writer's cgroup and
    // never reclaimable as inactive file pages.
    let mut hog = shell_container(
        "hog",
        &env.image,
        "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=55 && exec sleep 3600",
    );
    hog.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 256 * MIB as i64,
            cpu_quota: 150_000,
            cpu_period: 100_000,
            ..Default::default()
        }),
        ..Default::default()
    });
    let hog_id = flow.create_and_start(&pod_id, &hog, &pod).await.unwrap();
    // Busy for four seconds, with three more processes beside it.
    let spin = shell_container(
        "spin",
        &env.image,
        "sleep 3600 & sleep 3600 & sleep 3600 & timeout 4 sh -c 'while :; do :; done'; exec sleep 3600",
    );
    let spin_id = flow.create_and_start(&pod_id, &spin, &pod).await.unwrap();
    let keys = descriptor_keys(&mut flow).await;

    // Read until the container has filled its 55 MiB.
    let mut working_set = 0;
    for _ in 0..60 {
        let pods = pod_metrics(&mut flow).await;
        let c = pods
            .iter()
            .flat_map(|p| &p.container_metrics)
            .find(|c| c.container_id == hog_id);
        working_set = c
            .and_then(|c| {
                value_of(
                    &c.metrics,
                    &keys,
                    "container_memory_working_set_bytes",
                    "container",
                    "hog",
                )
            })
            .unwrap_or(0);
        if working_set >= 50 * MIB {
            break;
        }
        tokio::time::sleep(SECOND / 2).await;
    }
    assert!(working_set >= 50 * MIB, "{working_set}");

    // The spinner's CPU time, in whole seconds, and its processes.
    let mut cpu = 0;
    let mut processes = 0;
    for _ in 0..60 {
        let pods = pod_metrics(&mut flow).await;
        if let Some(c) = pods
            .iter()
            .flat_map(|p| &p.container_metrics)
            .find(|c| c.container_id == spin_id)
        {
            cpu = value_of(
                &c.metrics,
                &keys,
                "container_cpu_usage_seconds_total",
                "cpu",
                "total",
            )
            .unwrap_or(0);
            processes = value_of(
                &c.metrics,
                &keys,
                "container_processes",
                "container",
                "spin",
            )
            .unwrap_or(0);
        }
        if cpu >= 1 {
            break;
        }
        tokio::time::sleep(SECOND / 2).await;
    }
    assert!(cpu >= 1, "the spinner used {cpu} s of CPU");
    assert!(processes >= 4, "{processes} processes");

    // Every metric is described, with one value per label key, and names its pod.
    let pods = pod_metrics(&mut flow).await;
    let ours = pods.iter().find(|p| p.pod_sandbox_id == pod_id).unwrap();
    let all: Vec<&Metric> = ours
        .metrics
        .iter()
        .chain(ours.container_metrics.iter().flat_map(|c| &c.metrics))
        .collect();
    assert!(all.len() > 20, "{all:?}");
    for m in &all {
        let keys = keys
            .get(&m.name)
            .unwrap_or_else(|| panic!("{} is not described", m.name));
        assert_eq!(keys.len(), m.label_values.len(), "{m:?}");
        let label = |k: &str| &m.label_values[keys.iter().position(|x| x == k).unwrap()];
        assert_eq!(label("pod"), "mem");
        assert_eq!(label("namespace"), "crius-e2e");
    }
    let hog_metrics = &ours
        .container_metrics
        .iter()
        .find(|c| c.container_id == hog_id)
        .unwrap()
        .metrics;
    let spec = |name: &str| value_of(hog_metrics, &keys, name, "container", "hog");
    assert_eq!(spec("container_spec_memory_limit_bytes"), Some(256 * MIB));
    assert_eq!(spec("container_spec_cpu_quota"), Some(150_000));
    assert_eq!(spec("container_spec_cpu_period"), Some(100_000));
    let id_of = |m: &Metric| m.label_values[1].clone();
    assert!(hog_metrics.iter().all(|m| id_of(m) == hog_id));
    assert!(
        ours.metrics
            .iter()
            .all(|m| m.label_values[0] == "POD" && id_of(m) == pod_id)
    );
    for family in [
        "container_cpu_usage_seconds_total",
        "container_memory_usage_bytes",
        "container_memory_rss",
        "container_memory_cache",
        "container_processes",
        "container_threads",
        "container_spec_cpu_shares",
        "container_spec_memory_limit_bytes",
        "container_oom_events_total",
        "container_last_seen",
    ] {
        assert!(
            hog_metrics.iter().any(|m| m.name == family),
            "{family} missing for the container"
        );
    }

    // The stream twin gives the same pods.
    let streamed: Vec<_> = flow
        .client
        .stream_pod_sandbox_metrics(StreamPodSandboxMetricsRequest {})
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let streamed: Vec<String> = streamed
        .into_iter()
        .flat_map(|m| m.unwrap().pod_sandbox_metrics)
        .map(|p| p.pod_sandbox_id)
        .collect();
    assert_eq!(streamed, std::slice::from_ref(&pod_id));

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    // Gone from the next collection (each serves for a second).
    tokio::time::sleep(SECOND + SECOND / 10).await;
    assert!(pod_metrics(&mut flow).await.is_empty());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn bytes_sent_between_pods_show_in_their_network_metrics() {
    const BYTES: u64 = 2_000_000;
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let server_pod = pod_config("net-server", &env.log_dir("server"));
    let client_pod = pod_config("net-client", &env.log_dir("client"));
    let server_id = flow.run_pod(&server_pod).await.unwrap();
    let client_id = flow.run_pod(&client_pod).await.unwrap();
    let server = shell_container(
        "server",
        &env.image,
        &format!(
            "mkdir -p /www && head -c {BYTES} /dev/zero > /www/blob && exec httpd -f -p 8080 -h /www"
        ),
    );
    flow.create_and_start(&server_id, &server, &server_pod)
        .await
        .unwrap();
    let client = flow
        .create_and_start(
            &client_id,
            &sleep_container("client", &env.image, 3600),
            &client_pod,
        )
        .await
        .unwrap();
    let server_ip = flow
        .pod_status(&server_id)
        .await
        .unwrap()
        .network
        .unwrap()
        .ip;
    let keys = descriptor_keys(&mut flow).await;
    let eth0 = |pods: &[PodSandboxMetrics], pod: &str, name: &str| {
        pods.iter()
            .find(|p| p.pod_sandbox_id == pod)
            .and_then(|p| value_of(&p.metrics, &keys, name, "interface", "eth0"))
            .unwrap_or(0)
    };
    let before = pod_metrics(&mut flow).await;
    let sent_before = eth0(
        &before,
        &server_id,
        "container_network_transmit_bytes_total",
    );
    let got_before = eth0(&before, &client_id, "container_network_receive_bytes_total");

    let url = format!("http://{server_ip}:8080/blob");
    let mut fetched = false;
    for _ in 0..50 {
        let r = flow
            .exec_sync(&client, &["wget", "-qO", "/dev/null", &url], 10 * SECOND)
            .await
            .unwrap();
        if r.exit_code == 0 {
            fetched = true;
            break;
        }
        tokio::time::sleep(SECOND / 10).await;
    }
    assert!(fetched, "wget of {url} kept failing");

    // The cached collection is at most a second old.
    tokio::time::sleep(SECOND + SECOND / 10).await;
    let after = pod_metrics(&mut flow).await;
    let sent = eth0(&after, &server_id, "container_network_transmit_bytes_total") - sent_before;
    let got = eth0(&after, &client_id, "container_network_receive_bytes_total") - got_before;
    assert!(sent >= BYTES, "the server pod sent {sent} bytes");
    assert!(got >= BYTES, "the client pod received {got} bytes");
    let packets = eth0(
        &after,
        &client_id,
        "container_network_receive_packets_total",
    );
    assert!(packets > 0);
    // Loopback is not the pod's network.
    let lo = after
        .iter()
        .flat_map(|p| &p.metrics)
        .any(|m| m.label_values.last().map(String::as_str) == Some("lo"));
    assert!(!lo);

    for id in [&server_id, &client_id] {
        flow.stop_pod(id).await.unwrap();
        flow.remove_pod(id).await.unwrap();
    }
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// The value of the exposition line that starts with `series` (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// The sum of the series whose lines start with `prefix` and contain `having`.
fn sum_of(text: &str, prefix: &str, having: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(having))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(port: u16) -> String {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let kind = response.headers().get("content-type").cloned();
    assert!(kind.is_some_and(|k| {
        k.to_str()
            .unwrap_or("")
            .starts_with("application/openmetrics-text")
    }),);
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_prometheus_endpoint_counts_concurrent_lifecycle_calls() {
    const CLIENTS: usize = 8;
    let port = free_port().unwrap();
    let env = PodEnv::start_with(|b| {
        b.config_value("metrics.enable", true)
            .config_value("metrics.port", i64::from(port))
    })
    .await
    .unwrap();
    let before = scrape(port).await;
    // The harness pulled the test image.
    assert!(sample(&before, r#"crius_image_pulls_total{result="success"}"#) >= 1.0);
    assert!(sample(&before, "crius_image_pull_bytes_total") > 0.0);
    assert!(sample(&before, "crius_image_pull_duration_seconds_count") >= 1.0);
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
        "crius_heap_bytes",
        "crius_heap_allocations_total",
    ] {
        assert!(sample(&before, name) > 0.0, "{name}");
    }
    assert!(sample(&before, "process_start_time_seconds") > 1.0e9);

    // Eight clients, each through a whole pod lifecycle at once.
    let runs = (0..CLIENTS).map(|i| {
        let socket = env.socket().to_path_buf();
        let image = env.image.clone();
        let pod = pod_config(&format!("prom-{i}"), &env.log_dir(&format!("prom-{i}")));
        tokio::spawn(async move {
            let mut flow = PodFlow::connect(&socket).await.unwrap();
            let id = flow.run_pod(&pod).await.unwrap();
            let c = sleep_container("sleeper", &image, 3600);
            flow.create_and_start(&id, &c, &pod).await.unwrap();
            flow.stop_pod(&id).await.unwrap();
            flow.remove_pod(&id).await.unwrap();
        })
    });
    // Scraped while they run, too.
    let scraping = async {
        for _ in 0..5 {
            scrape(port).await;
            tokio::time::sleep(SECOND / 5).await;
        }
    };
    let (runs, ()) = tokio::join!(futures::future::join_all(runs), scraping);
    for r in runs {
        r.unwrap();
    }

    // A failed pull and a failed call.
    let mut flow = env.flow().await.unwrap();
    let mut images = env.crius.images().await.unwrap();
    let missing = format!("{}/e2e/absent:v1", env.registry.host());
    assert!(images.pull(&missing).await.is_err());
    assert!(flow.container_status("no-such-container").await.is_err());
    // One pod left running, with one container.
    let pod = pod_config("prom-left", &env.log_dir("prom-left"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    flow.create_and_start(&pod_id, &sleep_container("s", &env.image, 3600), &pod)
        .await
        .unwrap();
    // And one the OOM killer ends; its status is read many times, it counts once.
    let mut oom = shell_container("oom", &env.image, "tail /dev/zero");
    oom.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            memory_swap_limit_in_bytes: 32 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    let oom = flow.create_and_start(&pod_id, &oom, &pod).await.unwrap();
    let s = flow.wait_container_exited(&oom, 60 * SECOND).await.unwrap();
    assert_eq!(s.reason, "OOMKilled");
    flow.container_status(&oom).await.unwrap();

    let after = scrape(port).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    for rpc in [
        "RunPodSandbox",
        "CreateContainer",
        "StartContainer",
        "StopPodSandbox",
        "RemovePodSandbox",
    ] {
        let calls = moved(&format!(
            r#"crius_rpc_requests_total{{rpc="{rpc}",code="Ok"}}"#
        ));
        assert!(calls >= CLIENTS as f64, "{rpc}: {calls}\n{after}");
        let timed = moved(&format!(
            r#"crius_rpc_duration_seconds_count{{rpc="{rpc}"}}"#
        ));
        assert!(timed >= CLIENTS as f64, "{rpc} histogram: {timed}");
        let inf = moved(&format!(
            r#"crius_rpc_duration_seconds_bucket{{le="+Inf",rpc="{rpc}"}}"#
        ));
        assert_eq!(inf, timed, "{rpc}");
        assert!(moved(&format!(r#"crius_rpc_duration_seconds_sum{{rpc="{rpc}"}}"#)) > 0.0);
    }
    assert_eq!(
        moved(r#"crius_rpc_errors_total{rpc="ContainerStatus",code="NotFound"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(moved(r#"crius_image_pulls_total{result="failure"}"#), 1.0);
    // By reason (a missing manifest is not_found).
    let failures = |text: &str| -> f64 { sum_of(text, "crius_image_pull_failures_total{", "") };
    assert_eq!(failures(&after) - failures(&before), 1.0, "{after}");
    // Pause and container monitors, CNI ADD and DEL for each pod.
    assert!(moved("crius_monitor_launch_duration_seconds_count") >= 2.0 * CLIENTS as f64);
    let cni = after
        .lines()
        .filter(|l| {
            l.starts_with("crius_cni_plugin_duration_seconds_count{")
                && l.contains(r#"command="ADD""#)
        })
        .map(|l| sample(l, l.split(' ').next().unwrap_or("")))
        .sum::<f64>();
    assert!(cni >= CLIENTS as f64, "{after}");
    assert_eq!(sample(&after, r#"crius_pods{state="ready"}"#), 1.0);
    assert_eq!(sample(&after, r#"crius_pods{state="notready"}"#), 0.0);
    assert_eq!(sample(&after, r#"crius_containers{state="running"}"#), 1.0);
    assert_eq!(sample(&after, r#"crius_containers{state="exited"}"#), 1.0);
    assert_eq!(moved("crius_container_oom_kills_total"), 1.0, "{after}");
    assert!(after.ends_with("# EOF\n"));

    // Anything but /metrics is not found.
    let other = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
