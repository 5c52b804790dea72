//! Faults injected into a running node (issue 14): a `kill -9` of the daemon at random points
//! while eight clients churn pods — nothing acknowledged is lost, nothing leaks, everything left
//! is removable; a `kill -9` of a container's monitor — the container is reported exited, with
//! the reason, and removable, whether the daemon saw the monitor die or was down then; and a
//! truncated or corrupted state record — the daemon starts, reports it and quarantines it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crius_e2e::cri::api::{ContainerState, ContainerStatus};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, sleep_container};
use rand::{Rng, SeedableRng};

const SECOND: Duration = Duration::from_secs(1);

/// What the churning clients got acknowledged: pods and containers created and not yet
/// acknowledged removed, and the pods whose removal was asked for (a crash may have cut its
/// answer after it was done: such a pod may be gone or still listed).
#[derive(Default)]
struct Acked {
    pods: HashSet<String>,
    containers: HashSet<(String, String)>,
    removing: HashSet<String>,
}

/// One client: pods with a container each, run, started, stopped and removed, over and over,
/// until a call fails (the daemon died). Every acknowledged creation and removal is noted.
async fn churn(
    mut flow: PodFlow,
    image: String,
    logs: PathBuf,
    client: usize,
    acked: Arc<Mutex<Acked>>,
) {
    for i in 0.. {
        let pod = pod_config(&format!("churn-{client}-{i}"), &logs);
        let Ok(pod_id) = flow.run_pod(&pod).await else {
            return;
        };
        acked.lock().unwrap().pods.insert(pod_id.clone());
        let c = sleep_container("c", &image, 3600);
        let Ok(id) = flow.create_container(&pod_id, &c, &pod).await else {
            return;
        };
        acked
            .lock()
            .unwrap()
            .containers
            .insert((pod_id.clone(), id.clone()));
        if flow.start_container(&id).await.is_err() || flow.stop_pod(&pod_id).await.is_err() {
            return;
        }
        acked.lock().unwrap().removing.insert(pod_id.clone());
        if flow.remove_pod(&pod_id).await.is_err() {
            return;
        }
        let mut a = acked.lock().unwrap();
        a.pods.remove(&pod_id);
        a.containers.remove(&(pod_id.clone(), id));
        a.removing.remove(&pod_id);
    }
}

#[tokio::test]
async fn kill9_at_random_points_of_eight_clients_churning_loses_and_leaks_nothing() {
    const CLIENTS: usize = 8;
    let seed: u64 = std::env::var("CRIUS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (CRIUS_FAULT_SEED={seed} repeats these kill points)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut env = PodEnv::start().await.unwrap();
    for round in 0..5 {
        let acked = Arc::new(Mutex::new(Acked::default()));
        let mut churners = Vec::new();
        for client in 0..CLIENTS {
            churners.push(tokio::spawn(churn(
                env.flow().await.unwrap(),
                env.image.clone(),
                env.log_dir(&format!("r{round}c{client}")),
                client,
                acked.clone(),
            )));
        }
        let delay = Duration::from_millis(rng.random_range(300..3000));
        tokio::time::sleep(delay).await;
        env.crius.kill9().await.unwrap();
        for c in churners {
            let _ = c.await;
        }
        env.crius.restart().await.unwrap();

        // Nothing acknowledged is lost.
        let mut flow = env.flow().await.unwrap();
        let pods: HashSet<String> = flow
            .list_pods()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        let containers: HashSet<String> = flow
            .list_containers()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        println!(
            "round {round}: killed after {delay:?}; {} pods and {} containers acknowledged and listed",
            acked.pods.len(),
            acked.containers.len()
        );
        let lost_pods: Vec<_> = acked
            .pods
            .iter()
            .filter(|p| !pods.contains(*p) && !acked.removing.contains(*p))
            .collect();
        let lost_containers: Vec<_> = acked
            .containers
            .iter()
            .filter(|(p, c)| !containers.contains(c) && !acked.removing.contains(p))
            .collect();
        assert!(
            lost_pods.is_empty(),
            "round {round}: pods lost: {lost_pods:?}"
        );
        assert!(
            lost_containers.is_empty(),
            "round {round}: containers lost: {lost_containers:?}"
        );
        // Everything listed answers, and is removable; then nothing is left.
        for p in &pods {
            flow.pod_status(p).await.unwrap();
        }
        for c in &containers {
            flow.container_status(c).await.unwrap();
        }
        flow.cleanup_all().await.unwrap();
        assert!(flow.list_pods().await.unwrap().is_empty());
        let leaks = env.leaks();
        assert!(leaks.is_empty(), "round {round}: {leaks}");
    }
}

/// The verbose status' `monitorPid` and `pid` of a container.
async fn pids(flow: &mut PodFlow, id: &str) -> (i32, i32) {
    let info = flow.container_info(id).await.unwrap();
    let get = |key: &str| {
        info[key]
            .as_i64()
            .unwrap_or_else(|| panic!("{key} in {info}")) as i32
    };
    (get("monitorPid"), get("pid"))
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// Whether `pid` runs (a zombie does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        !matches!(state, Some("Z" | "X") | None)
    })
}

async fn wait_exited(flow: &mut PodFlow, id: &str) -> ContainerStatus {
    let deadline = Instant::now() + 20 * SECOND;
    loop {
        let status = flow.container_status(id).await.unwrap();
        if status.state == ContainerState::ContainerExited as i32 {
            return status;
        }
        assert!(Instant::now() < deadline, "{id} still {:?}", status.state);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_killed_monitor_leaves_its_container_exited_with_the_reason_and_removable() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("monitor-killed", &env.log_dir("monitor-killed"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let seen = flow
        .create_and_start(&pod_id, &sleep_container("seen", &env.image, 3600), &pod)
        .await
        .unwrap();
    let unseen = flow
        .create_and_start(&pod_id, &sleep_container("unseen", &env.image, 3600), &pod)
        .await
        .unwrap();

    // Killed while the daemon runs.
    let (monitor, process) = pids(&mut flow, &seen).await;
    kill9(monitor);
    let status = wait_exited(&mut flow, &seen).await;
    assert_eq!(status.reason, "Error");
    assert!(status.message.contains("monitor"), "{}", status.message);
    assert!(
        !running(process),
        "the container runs on without its monitor"
    );

    // Killed while the daemon is down.
    let (monitor, process) = pids(&mut flow, &unseen).await;
    env.crius.kill9().await.unwrap();
    kill9(monitor);
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let status = wait_exited(&mut flow, &unseen).await;
    assert!(status.message.contains("monitor"), "{}", status.message);
    assert!(
        !running(process),
        "the container runs on without its monitor"
    );

    for id in [&seen, &unseen] {
        flow.remove_container(id).await.unwrap();
    }
    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// The files under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_truncated_or_corrupted_record_is_quarantined_and_startup_goes_on() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("records", &env.log_dir("records"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let truncated = flow
        .create_and_start(
            &pod_id,
            &sleep_container("truncated", &env.image, 3600),
            &pod,
        )
        .await
        .unwrap();
    let corrupted = flow
        .create_and_start(
            &pod_id,
            &sleep_container("corrupted", &env.image, 3600),
            &pod,
        )
        .await
        .unwrap();
    let intact = flow
        .create_and_start(&pod_id, &sleep_container("intact", &env.image, 3600), &pod)
        .await
        .unwrap();

    env.crius.kill9().await.unwrap();
    let records = env.crius.root().join("state/containers");
    let record = |id: &str| records.join(format!("{id}.json"));
    let originals: Vec<(PathBuf, Vec<u8>)> = [&truncated, &corrupted]
        .iter()
        .map(|id| (record(id), std::fs::read(record(id)).unwrap()))
        .collect();
    let (path, bytes) = &originals[0];
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    let (path, bytes) = &originals[1];
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().step_by(7) {
        *b = b'\x01';
    }
    std::fs::write(path, garbage).unwrap();

    // The daemon starts, lists what it could read, and moved the two records aside.
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let listed: Vec<String> = flow
        .list_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&intact));
    assert!(!record(&truncated).exists() && !record(&corrupted).exists());
    let quarantine = env.crius.root().join("state/quarantine/containers");
    let kept = files(&quarantine);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let log = env.crius.log();
    assert!(
        log.contains(&format!("{truncated}.json is unreadable")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{corrupted}.json is unreadable")),
        "{log}"
    );

    // A person puts the records right; the next start-up has everything back, and it all goes.
    env.crius.kill9().await.unwrap();
    for (path, bytes) in &originals {
        std::fs::write(path, bytes).unwrap();
    }
    for file in kept {
        std::fs::remove_file(file).unwrap();
    }
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut listed: Vec<String> = flow
        .list_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    listed.sort();
    let mut all = vec![truncated, corrupted, intact];
    all.sort();
    assert_eq!(listed, all);
    flow.cleanup_all().await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// A tmpfs of `mib` MiB mounted over `dir` (hiding what is there) until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Tmpfs {
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={mib}m,mode=0700").as_str()),
        )
        .unwrap();
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, mib: u64) {
        nix::mount::mount(
            None::<&str>,
            &self.0,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT,
            Some(format!("size={mib}m").as_str()),
        )
        .unwrap();
    }

    /// Bytes in use.
    fn used(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.0).unwrap();
        (s.blocks() - s.blocks_free()) * s.fragment_size()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// What the environment leaks, but for the test's own tmpfs root.
fn leaks_besides(env: &PodEnv, root: &Tmpfs) -> String {
    let ours = format!("mount {} ", root.0.display());
    env.leaks()
        .to_string()
        .lines()
        .filter(|l| !l.starts_with(&ours))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes into `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 1 << 20];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(nix::libc::ENOSPC), "{e}");
            break;
        }
    }
    // What did not fit in the last whole chunk.
    while file.write_all(&chunk[..4096]).is_ok() {}
}

#[tokio::test]
async fn a_full_root_fails_pulls_and_pod_starts_cleanly_and_they_work_once_space_is_back() {
    use crius_e2e::images::{self, ConfigSpec, Format, ImageBuild};
    use crius_e2e::layer::{Compression, Layer};
    use tonic::Code;

    let mut env = PodEnv::start().await.unwrap();
    // The daemon's root on a small file system of its own (the image store comes back empty).
    env.crius.stop().await.unwrap();
    let root = Tmpfs::mount(env.crius.root(), 48);
    env.crius.restart().await.unwrap();
    let mut images_client = env.crius.images().await.unwrap();
    images_client.pull(&env.image).await.unwrap();

    // 64 MiB that do not compress: more than the root holds (blob and unpacked layer).
    let mut data = vec![0u8; 64 << 20];
    images::fill_random(&mut data, 14);
    let layer = Layer::from_tar(
        &{
            let mut tar = crius_e2e::layer::TarBuilder::new();
            tar.file("big.bin", 0o644, &data).unwrap();
            tar.finish().unwrap()
        },
        Compression::Gzip(1),
    )
    .unwrap();
    let build = ImageBuild::new(Format::Oci, &ConfigSpec::new("full"), vec![layer]).unwrap();
    let pushed = images::push_image(&env.registry, "e2e/too-big", "v1", &build)
        .await
        .unwrap();
    let reference = format!("{}/e2e/too-big:v1", env.registry.host());
    let used = root.used();
    let layers = env.crius.layer_dirs();
    let error = images_client.pull(&reference).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(error.message().contains("No space left"), "{error:?}");
    // Nothing half-written: no new layer, no image, the space given back.
    assert_eq!(env.crius.layer_dirs(), layers);
    assert_eq!(images_client.list(None).await.unwrap().len(), 1);
    let after = root.used();
    assert!(
        after <= used + (1 << 20),
        "{used} bytes in use before, {after} after"
    );

    // Space back: the same pull works.
    root.resize(512);
    assert_eq!(
        images_client.pull(&reference).await.unwrap(),
        pushed.config_digest
    );
    images_client.remove(&reference).await.unwrap();
    root.resize(48);

    // A pod started on a full root fails with the reason and leaves nothing.
    let filler = env.crius.root().join("filler");
    fill(&filler);
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("full", &env.log_dir("full"));
    let error = flow.run_pod(&pod).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    let listed = flow.list_pods().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let leaks = leaks_besides(&env, &root);
    assert!(leaks.is_empty(), "{leaks}");

    // Space back: the same request works.
    std::fs::remove_file(&filler).unwrap();
    let pod_id = flow.run_pod(&pod).await.unwrap();
    flow.create_and_start(&pod_id, &sleep_container("c", &env.image, 3600), &pod)
        .await
        .unwrap();
    flow.cleanup_all().await.unwrap();
    let leaks = leaks_besides(&env, &root);
    assert!(leaks.is_empty(), "{leaks}");
    env.crius.stop().await.unwrap();
    drop(root);
}
