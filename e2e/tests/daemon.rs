//! The daemon itself: start-up, the socket, signals, configuration, and the RPCs that are not
//! there yet. Each test runs its own crius with its own temporary root, runroot and socket.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use crius_cri_api::v1::{self, StatusRequest, VersionRequest};
use crius_e2e::Crius;
use crius_e2e::daemon::crius_bin;
use crius_e2e::util::{run_with_timeout, workspace_root};
use tonic::Code;

#[tokio::test]
async fn version_answers_crius_and_v1() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.runtime_client().await.unwrap();
    let version = client
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, "crius");
    assert_eq!(version.runtime_api_version, "v1");
    assert!(!version.runtime_version.is_empty());
    assert!(!version.version.is_empty());
}

#[tokio::test]
async fn status_reports_runtime_ready_and_network_condition() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.runtime_client().await.unwrap();
    let response = client
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let conditions = response
        .status
        .expect("Status has a RuntimeStatus")
        .conditions;
    let runtime = conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady")
        .unwrap_or_else(|| panic!("no RuntimeReady condition in {conditions:?}"));
    assert!(runtime.status, "RuntimeReady is false: {runtime:?}");
    let network = conditions
        .iter()
        .find(|c| c.r#type == "NetworkReady")
        .unwrap_or_else(|| panic!("no NetworkReady condition in {conditions:?}"));
    if !network.status {
        assert!(
            !network.reason.is_empty(),
            "NetworkReady false without a reason: {network:?}"
        );
    }
}

#[tokio::test]
async fn socket_is_mode_0660() {
    let crius = Crius::start().await.unwrap();
    let metadata = std::fs::metadata(crius.socket()).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o660);
}

#[tokio::test]
async fn second_daemon_on_same_root_is_refused() {
    let crius = Crius::start().await.unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut second = Command::new(crius_bin());
    second
        .arg("--config")
        .arg(crius.config_path())
        .arg("--config-dir")
        .arg(crius.config_dir())
        .arg("--root")
        .arg(crius.root())
        .arg("--runroot")
        .arg(other.path().join("run"))
        .arg("--listen")
        .arg(other.path().join("run/crius.sock"));
    let finished =
        tokio::task::spawn_blocking(move || run_with_timeout(&mut second, Duration::from_secs(15)))
            .await
            .unwrap()
            .unwrap();
    let status = finished.status.unwrap_or_else(|| {
        panic!(
            "the second daemon kept running; stderr:\n{}",
            finished.stderr
        )
    });
    assert!(!status.success(), "the second daemon exited with {status}");
    let stderr = finished.stderr.to_lowercase();
    assert!(
        stderr.contains("lock") || stderr.contains("another"),
        "stderr does not mention the lock:\n{}",
        finished.stderr
    );
    // The first one is unharmed.
    let mut client = crius.runtime_client().await.unwrap();
    client.version(VersionRequest::default()).await.unwrap();
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_removes_socket() {
    let mut crius = Crius::start().await.unwrap();
    assert!(crius.socket().exists());
    let status = crius.stop().await.unwrap();
    assert!(status.success(), "crius exited with {status} on SIGTERM");
    assert!(!crius.socket().exists(), "the socket is left behind");
}

/// RPCs whose subsystems have not landed yet. Remove an entry when its RPC gets implemented.
const UNIMPLEMENTED: &[&str] = &["CheckpointContainer"];

#[tokio::test]
async fn unimplemented_rpcs_name_themselves() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.runtime_client().await.unwrap();
    for &rpc in UNIMPLEMENTED {
        let result = match rpc {
            "CheckpointContainer" => client
                .checkpoint_container(v1::CheckpointContainerRequest::default())
                .await
                .map(drop),
            other => panic!("add a call for {other}"),
        };
        let status = result.expect_err(rpc);
        assert_eq!(status.code(), Code::Unimplemented, "{rpc}: {status:?}");
        assert!(
            status.message().contains(rpc),
            "{rpc}: message {:?}",
            status.message()
        );
    }
    // Each left a line in the daemon's log.
    let log = crius.log();
    for &rpc in UNIMPLEMENTED {
        assert!(
            log.contains(&format!(
                "/runtime.v1.RuntimeService/{rpc} answered UNIMPLEMENTED"
            )),
            "no log line for {rpc}:\n{log}"
        );
    }
}

fn parse_toml(text: &str, what: &str) -> toml::Value {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .unwrap_or_else(|e| panic!("{what} is not TOML: {e}\n{text}"))
}

#[test]
fn config_subcommand_prints_the_embedded_default() {
    let finished = run_with_timeout(
        Command::new(crius_bin()).args([
            "config",
            "--config",
            "/nonexistent",
            "--config-dir",
            "/nonexistent",
        ]),
        Duration::from_secs(15),
    )
    .unwrap();
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "crius config failed: {:?}\n{}",
        finished.status,
        finished.stderr
    );
    let printed = parse_toml(&finished.stdout, "crius config's output");
    let shipped_path = workspace_root().join("config/crius.toml");
    let shipped = parse_toml(
        &std::fs::read_to_string(&shipped_path).unwrap(),
        "config/crius.toml",
    );
    assert_eq!(
        printed,
        shipped,
        "crius config differs from {}",
        shipped_path.display()
    );
}

#[test]
fn config_subcommand_applies_main_file_drop_ins_and_flags_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("crius.toml");
    let drop_ins = dir.path().join("crius.d");
    std::fs::create_dir(&drop_ins).unwrap();
    std::fs::write(
        &main,
        "log_level = \"warn\"\n[image]\nmax_concurrent_downloads = 2\n",
    )
    .unwrap();
    std::fs::write(
        drop_ins.join("10-a.toml"),
        "[image]\nmax_concurrent_downloads = 4\n",
    )
    .unwrap();
    std::fs::write(
        drop_ins.join("20-b.toml"),
        "[image]\nmax_concurrent_downloads = 5\n",
    )
    .unwrap();
    let finished = run_with_timeout(
        Command::new(crius_bin())
            .arg("config")
            .arg("--config")
            .arg(&main)
            .arg("--config-dir")
            .arg(&drop_ins)
            .args(["--root", "/tmp/crius-e2e-flag-root"]),
        Duration::from_secs(15),
    )
    .unwrap();
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "{}",
        finished.stderr
    );
    let printed = parse_toml(&finished.stdout, "crius config's output");
    assert_eq!(printed["log_level"].as_str(), Some("warn"));
    assert_eq!(
        printed["image"]["max_concurrent_downloads"].as_integer(),
        Some(5)
    );
    assert_eq!(printed["root"].as_str(), Some("/tmp/crius-e2e-flag-root"));
}

fn start_with_drop_in(name: &str, contents: &str) -> (Crius, crius_e2e::util::Finished) {
    let crius = Crius::builder().drop_in(name, contents).prepare().unwrap();
    let finished = run_with_timeout(&mut crius.command(), Duration::from_secs(15)).unwrap();
    (crius, finished)
}

#[test]
fn invalid_config_stops_startup_naming_file_and_key() {
    let cases = [
        (
            "10-unknown-key.toml",
            "[image]\nno_such_key = 1\n",
            "no_such_key",
        ),
        (
            "20-wrong-type.toml",
            "[image]\nmax_concurrent_downloads = \"three\"\n",
            "max_concurrent_downloads",
        ),
    ];
    for (file, contents, key) in cases {
        let (crius, finished) = start_with_drop_in(file, contents);
        let status = finished
            .status
            .unwrap_or_else(|| panic!("{file}: crius started despite the invalid config"));
        assert!(!status.success(), "{file}: crius exited with {status}");
        assert!(
            finished.stderr.contains(file),
            "{file}: stderr does not name the file:\n{}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains(key),
            "{file}: stderr does not name the key {key}:\n{}",
            finished.stderr
        );
        assert!(!crius.socket().exists(), "{file}: a socket was created");
    }
}

#[test]
fn the_systemd_driver_needs_a_host_booted_with_systemd() {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipping: this host runs systemd (the VM node test covers the driver there)");
        return;
    }
    let (crius, finished) = start_with_drop_in(
        "10-systemd.toml",
        "[runtime]\ncgroup_manager = \"systemd\"\n",
    );
    let status = finished
        .status
        .expect("crius started with the systemd driver on a host without systemd");
    assert!(!status.success());
    assert!(
        finished.stderr.contains("not booted with systemd"),
        "{}",
        finished.stderr
    );
    assert!(!crius.socket().exists());
}

async fn network_ready(network_dir: &std::path::Path) -> crius_cri_api::v1::RuntimeCondition {
    let crius = Crius::builder()
        .drop_in(
            "10-network.toml",
            &format!(
                "[network]\nnetwork_dir = {:?}\n",
                network_dir.display().to_string()
            ),
        )
        .start()
        .await
        .unwrap();
    let mut client = crius.runtime_client().await.unwrap();
    let status = client
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    status
        .conditions
        .into_iter()
        .find(|c| c.r#type == "NetworkReady")
        .unwrap()
}

#[tokio::test]
async fn network_ready_follows_the_cni_configuration_found() {
    let dir = tempfile::tempdir().unwrap();
    let empty = network_ready(dir.path()).await;
    assert!(!empty.status);
    assert_eq!(empty.reason, "NetworkPluginNotReady");
    assert!(
        empty.message.contains(&dir.path().display().to_string()),
        "{empty:?}"
    );

    std::fs::write(
        dir.path().join("10-test.conflist"),
        r#"{"cniVersion":"1.0.0","name":"test","plugins":[{"type":"loopback"}]}"#,
    )
    .unwrap();
    let found = network_ready(dir.path()).await;
    assert!(found.status, "{found:?}");
}

/// The driver the harness asked for, else the detected one: systemd on a host booted with
/// systemd (the daemon's default parent is left to the driver), cgroupfs elsewhere.
#[tokio::test]
async fn runtime_config_reports_the_cgroup_driver_in_use() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.runtime_client().await.unwrap();
    let config = client
        .runtime_config(v1::RuntimeConfigRequest::default())
        .await
        .unwrap()
        .into_inner();
    let systemd = match std::env::var("CRIUS_E2E_CGROUP_MANAGER").as_deref() {
        Ok("systemd") => true,
        Ok("cgroupfs") => false,
        _ => std::path::Path::new("/run/systemd/system").is_dir(),
    };
    let expected = if systemd {
        v1::CgroupDriver::Systemd
    } else {
        v1::CgroupDriver::Cgroupfs
    };
    assert_eq!(config.linux.unwrap().cgroup_driver, expected as i32);
    client
        .update_runtime_config(v1::UpdateRuntimeConfigRequest::default())
        .await
        .unwrap();
}
