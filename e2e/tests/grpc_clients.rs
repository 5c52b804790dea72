//! Clients other than tonic's and grpc-go's: a gRPC client built on gRPC's C core (Python's
//! `grpcio`, installed by hack/install-deps.sh), which sends the socket path, percent-encoded,
//! as the `:authority` of every call on a `unix:` target. crius answers it as containerd and
//! cri-o do.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crius_e2e::Crius;
use crius_e2e::util::{run_with_timeout, workspace_root};

/// Runs e2e/scripts/grpcio_version.py against `socket` with `target`; its stdout.
fn grpcio_version(socket: &Path, target: &str) -> String {
    let script = workspace_root().join("e2e/scripts/grpcio_version.py");
    let finished = run_with_timeout(
        Command::new("python3").arg(&script).arg(socket).arg(target),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "{} {target} failed ({:?}; is grpcio installed? hack/install-deps.sh installs it):\n{}{}",
        script.display(),
        finished.status,
        finished.stdout,
        finished.stderr
    );
    finished.stdout
}

#[tokio::test]
async fn a_grpcio_client_on_the_unix_socket_gets_answers() {
    let crius = Crius::start().await.unwrap();
    let socket = crius.socket();
    // What a tonic client (an authority h2 takes) is answered.
    let mut client = crius.runtime_client().await.unwrap();
    let version = client
        .version(crius_e2e::cri::api::VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let expected = [
        format!("version={}", version.version),
        format!("runtime_name={}", version.runtime_name),
        format!("runtime_version={}", version.runtime_version),
        format!("runtime_api_version={}", version.runtime_api_version),
    ];
    assert_eq!(version.runtime_name, "crius");
    // Both spellings of a unix target: `unix:///abs` sends `run%2F…`, `unix:/abs` `%2Frun%2F…`.
    for target in [
        format!("unix://{}", socket.display()),
        format!("unix:{}", socket.display()),
    ] {
        let out = grpcio_version(socket, &target);
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{target}");
    }
    // The connections were repaired, not refused: the daemon says so at debug level.
    let log = crius.log();
    assert!(
        log.contains("its calls are served as localhost"),
        "no repair logged:\n{log}"
    );
}
