//! Tests of the CRI metric families and their collection.
use std::collections::HashSet;

use super::*;

#[test]
fn family_names_are_unique_and_labels_are_prometheus_names() {
    let mut seen = HashSet::new();
    for f in FAMILIES {
        assert!(seen.insert(f.name), "{} twice", f.name);
        assert!(f.name.starts_with("container_"), "{}", f.name);
        let keys: Vec<&str> = BASE_LABELS.iter().chain(f.labels).copied().collect();
        let unique: HashSet<&&str> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{}: a label twice", f.name);
        for k in keys {
            assert!(k.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{k}");
        }
        // Counters end in _total or are cAdvisor's historic failcnt.
        if f.kind == MetricType::Counter {
            assert!(
                f.name.ends_with("_total") || f.name.ends_with("failcnt"),
                "{}",
                f.name
            );
        }
    }
}

fn fixture_v2(root: &Path, rel: &str) {
    let dir = root.join(rel);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in [
        (
            "cpu.stat",
            "usage_usec 7000000\nuser_usec 5000000\nsystem_usec 2000000\n",
        ),
        ("cpu.max", "max 100000\n"),
        ("cpu.weight", "100\n"),
        ("memory.current", "52428800\n"),
        ("memory.max", "104857600\n"),
        ("memory.stat", "anon 52428800\nfile 0\ninactive_file 0\n"),
        ("memory.events", "max 0\noom_kill 0\n"),
        ("pids.current", "2\n"),
        ("pids.max", "max\n"),
        ("cgroup.procs", "1\n"),
        ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n"),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// Every metric names a described family and carries one value per label key.
#[test]
fn every_metric_matches_its_descriptor() {
    let root = tempfile::tempdir().unwrap();
    fixture_v2(root.path(), "pods/p1");
    fixture_v2(root.path(), "pods/p1/c1");
    let net_dev = root.path().join("net_dev");
    std::fs::write(
        &net_dev,
        "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n\
             lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
           eth0: 5000 40 2 1 0 0 0 0 7000 50 3 4 0 0 0 0\n",
    )
    .unwrap();
    let base = |c: &str, id: &str| [c, id, "img", "k8s_x", "ns", "pod"].map(str::to_owned);
    let pods = vec![PodTarget {
        id: "p1".into(),
        base: base("POD", "p1"),
        cgroup: Some("/pods/p1".into()),
        net_dev: Some(crate::pod::NetDev::Proc(net_dev)),
        created_at: 1_700_000_000_000_000_000,
        containers: vec![
            ContainerTarget {
                id: "c1".into(),
                base: base("app", "c1"),
                cgroup: Some("/pods/p1/c1".into()),
                upper: root.path().join("upper"),
                started_at: 1_700_000_000_000_000_000,
            },
            ContainerTarget {
                id: "gone".into(),
                base: base("old", "gone"),
                cgroup: Some("/pods/p1/gone".into()),
                upper: root.path().join("none"),
                started_at: 0,
            },
        ],
    }];
    std::fs::create_dir_all(root.path().join("upper")).unwrap();
    std::fs::write(root.path().join("upper/f"), vec![1u8; 10000]).unwrap();
    let got = collect(pods, root.path(), CgroupVersion::V2, root.path());
    let descriptors: HashMap<String, usize> = descriptors()
        .into_iter()
        .map(|d| (d.name, d.label_keys.len()))
        .collect();
    assert_eq!(got.len(), 1);
    let pod = &got[0];
    assert_eq!(
        pod.container_metrics.len(),
        1,
        "the gone container has none"
    );
    let all = pod
        .metrics
        .iter()
        .chain(pod.container_metrics.iter().flat_map(|c| &c.metrics));
    for m in all {
        let keys = descriptors.get(&m.name).copied();
        assert_eq!(keys, Some(m.label_values.len()), "{}", m.name);
        assert!(m.value.is_some() && m.timestamp > 0, "{}", m.name);
    }
    let find = |ms: &[api::Metric], name: &str, last: &str| {
        ms.iter()
            .find(|m| m.name == name && m.label_values.last().map(String::as_str) == Some(last))
            .and_then(|m| m.value)
            .map(|v| v.value)
    };
    assert_eq!(find(&pod.metrics, NET_RX_BYTES.name, "eth0"), Some(5000));
    assert_eq!(find(&pod.metrics, NET_TX_DROPPED.name, "eth0"), Some(4));
    assert_eq!(find(&pod.metrics, NET_RX_BYTES.name, "lo"), None);
    let c = &pod.container_metrics[0].metrics;
    assert_eq!(find(c, CPU_USAGE.name, "total"), Some(7));
    assert_eq!(find(c, MEM_WORKING_SET.name, "pod"), Some(52428800));
    assert_eq!(find(c, SPEC_MEMORY_LIMIT.name, "pod"), Some(104857600));
    assert_eq!(find(c, SPEC_CPU_QUOTA.name, "pod"), None, "unlimited");
    let written = c
        .iter()
        .find(|m| m.name == FS_WRITE_BYTES.name)
        .and_then(|m| m.value);
    assert_eq!(written.map(|v| v.value), Some(20));
    let layer = c
        .iter()
        .find(|m| m.name == FS_USAGE.name)
        .and_then(|m| m.value);
    assert!(layer.is_some_and(|v| v.value >= 10000), "{layer:?}");
    assert!(c.iter().all(|m| m.label_values[0] == "app"));
    // The start times, the writable layer's filesystem, and the open files (the fixture's
    // pids are not this host's processes' cgroup, but the family is always there).
    assert_eq!(find(c, START_TIME.name, "pod"), Some(1_700_000_000));
    assert_eq!(
        find(&pod.metrics, START_TIME.name, "pod"),
        Some(1_700_000_000)
    );
    for family in [&FS_INODES_TOTAL, &FS_LIMIT] {
        let v = c
            .iter()
            .find(|m| m.name == family.name)
            .and_then(|m| m.value);
        assert!(v.is_some_and(|v| v.value > 0), "{}: {v:?}", family.name);
    }
    assert!(c.iter().any(|m| m.name == FILE_DESCRIPTORS.name));
    assert!(c.iter().any(|m| m.name == SOCKETS.name));
}

#[test]
fn open_files_counts_descriptors_and_sockets() {
    let me = std::process::id();
    let (before_fds, before_sockets) = open_files(&[me]);
    let _socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (fds, sockets) = open_files(&[me]);
    assert!(fds > before_fds, "{before_fds} -> {fds}");
    assert!(sockets > before_sockets, "{before_sockets} -> {sockets}");
    assert_eq!(
        open_files(&[u32::MAX]),
        (0, 0),
        "a gone process holds nothing"
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_collection() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let cache = Arc::new(Cache::<u32>::default());
    let runs = Arc::new(AtomicU32::new(0));
    let calls = (0..8).map(|_| {
        let (cache, runs) = (cache.clone(), runs.clone());
        tokio::spawn(async move {
            cache
                .get_or_refresh(Duration::from_secs(60), || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await
        })
    });
    for call in futures::future::join_all(calls).await {
        assert_eq!(*call.unwrap().unwrap(), 1);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Past the interval, the next caller collects anew.
    let fresh = cache
        .get_or_refresh(Duration::ZERO, || async { Ok::<_, ()>(2) })
        .await
        .unwrap();
    assert_eq!(*fresh, 2);
}
