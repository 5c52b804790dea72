//! Exec, attach and port-forward over every WebSocket subprotocol the upstream streaming server
//! accepts — `v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, the legacy `channel.k8s.io` and
//! `base64.channel.k8s.io`, none at all — plus `v5.channel.k8s.io`, against busybox containers
//! in real pods, with our own client (crius_e2e::streaming_client::ws), and the handshakes
//! upstream refuses refused alike.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container};
use crius_e2e::streaming_client::urls::{attach_url, exec_url, port_forward_url};
use crius_e2e::streaming_client::{Output, Streams, ws};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const SECOND: Duration = Duration::from_secs(1);
const V5: &str = "v5.channel.k8s.io";
/// What exec and attach accept, "" being a client that names none.
const EXEC_PROTOCOLS: [&str; 6] = [
    V5,
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
    "",
];
/// What port-forward accepts with channels.
const PORTFORWARD_PROTOCOLS: [&str; 3] = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io", ""];
const SUCCESS: &str = r#"{"metadata":{},"status":"Success"}"#;

fn streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Streams {
    Streams {
        stdin,
        stdout,
        stderr,
        tty,
    }
}

fn json_status(protocol: &str) -> bool {
    protocol.starts_with("v4.") || protocol.starts_with("v5.")
}

fn base64(protocol: &str) -> bool {
    protocol.contains("base64")
}

/// The next message on the socket as (channel, data), within 10 s; None at its end.
async fn next(socket: &mut ws::Ws, protocol: &str) -> Option<(u8, Vec<u8>)> {
    loop {
        let message = tokio::time::timeout(10 * SECOND, socket.next())
            .await
            .unwrap_or_else(|_| panic!("{protocol:?}: nothing within 10 s"));
        match message {
            Some(Ok(message)) => {
                if let Some(frame) = ws::frame(protocol, message).unwrap() {
                    return Some(frame);
                }
            }
            _ => return None,
        }
    }
}

/// Everything the server sends until it closes, by channel.
async fn drain(socket: &mut ws::Ws, protocol: &str) -> Output {
    let mut out = Output::default();
    while let Some((ch, data)) = next(socket, protocol).await {
        if out.first.is_none() {
            out.first = Some((ch, data.clone()));
        }
        match ch {
            1 => out.take_stdout(&data, 1 << 20),
            2 => out.stderr.extend_from_slice(&data),
            3 => out.error.push_str(&String::from_utf8_lossy(&data)),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn exec_over_every_upstream_protocol() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("wsexec", &env.log_dir("wsexec"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let c = shell_container("app", &env.image, "sleep 3600");
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();

    for protocol in EXEC_PROTOCOLS {
        // stdin, stdout, stderr and a non-zero exit. Before the input: messages the server
        // is to drop (a channel that does not exist, one the client does not write, and in
        // base64 one that does not decode); the session goes on.
        let all = streams(true, true, true, false);
        let cmd = ["sh", "-c", "head -c 3; echo err >&2; exit 3"];
        let url = exec_url(&mut flow, &id, &cmd, all).await;
        let (mut socket, chosen) = ws::connect(&url, protocol).await.unwrap();
        assert_eq!(chosen, protocol);
        ws::send_in(&mut socket, protocol, 7, b"nobody")
            .await
            .unwrap();
        ws::send_in(&mut socket, protocol, 1, b"not yours")
            .await
            .unwrap();
        if base64(protocol) {
            socket.send(Message::Text("0!!!!".into())).await.unwrap();
        }
        ws::send_in(&mut socket, protocol, 0, b"hi\n")
            .await
            .unwrap();
        let out = drain(&mut socket, protocol).await;
        // The first message: empty, on stdout, the lowest channel the client reads.
        assert_eq!(out.first, Some((1, vec![])), "{protocol:?}");
        assert_eq!(out.stdout_text(), "hi\n", "{protocol:?}");
        assert_eq!(out.stderr, b"err\n", "{protocol:?}");
        if json_status(protocol) {
            assert_eq!(out.exit_code(), Some(3), "{protocol:?}: {}", out.error);
        } else {
            // Before v4 the error channel carries the failure's text.
            assert!(
                out.error
                    .starts_with("command terminated with non-zero exit code")
                    && out.error.ends_with("exit code 3"),
                "{protocol:?}: {}",
                out.error
            );
        }

        // Success: a JSON status from v4, nothing before.
        let url = exec_url(
            &mut flow,
            &id,
            &["true"],
            streams(false, true, false, false),
        )
        .await;
        let (mut socket, _) = ws::connect(&url, protocol).await.unwrap();
        let out = drain(&mut socket, protocol).await;
        let expected = if json_status(protocol) { SUCCESS } else { "" };
        assert_eq!(out.error, expected, "{protocol:?}");

        // Only stderr: the first message is on stderr; only stdin: on the error channel.
        let cmd = ["sh", "-c", "echo e >&2"];
        let url = exec_url(&mut flow, &id, &cmd, streams(false, false, true, false)).await;
        let (mut socket, _) = ws::connect(&url, protocol).await.unwrap();
        let out = drain(&mut socket, protocol).await;
        assert_eq!(out.first, Some((2, vec![])), "{protocol:?}");
        assert_eq!(out.stderr, b"e\n", "{protocol:?}");
        let cmd = ["head", "-c", "2"];
        let url = exec_url(&mut flow, &id, &cmd, streams(true, false, false, false)).await;
        let (mut socket, _) = ws::connect(&url, protocol).await.unwrap();
        ws::send_in(&mut socket, protocol, 0, b"ok").await.unwrap();
        let out = drain(&mut socket, protocol).await;
        assert_eq!(out.first, Some((3, vec![])), "{protocol:?}");
        assert_eq!(out.error, expected, "{protocol:?}");

        // A terminal: its size comes on the resize channel, framed as the protocol frames.
        let tty = streams(false, true, false, true);
        let url = exec_url(&mut flow, &id, &["stty", "size"], tty).await;
        let out = ws::run_session(&url, protocol, tty, None, Some((91, 27)), 4096, 30 * SECOND)
            .await
            .unwrap_or_else(|e| panic!("tty exec over {protocol:?}: {e:#}"));
        assert_eq!(out.stdout_text().trim(), "27 91", "{protocol:?}");
    }

    // v5 alone can end stdin (the close signal on channel 255) with the session up.
    let with_stdin = streams(true, true, false, false);
    let url = exec_url(&mut flow, &id, &["cat"], with_stdin).await;
    let out = ws::run_session(&url, V5, with_stdin, Some(b"abc"), None, 4096, 30 * SECOND)
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "abc");
    assert_eq!(out.error, SUCCESS);
    flow.cleanup_all().await.unwrap();
}

#[tokio::test]
async fn attach_over_every_upstream_protocol() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("wsattach", &env.log_dir("wsattach"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let ticker = shell_container(
        "ticker",
        &env.image,
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    );
    let ticker = flow.create_and_start(&pod_id, &ticker, &pod).await.unwrap();
    let mut cat = shell_container("cat", &env.image, "cat");
    cat.stdin = true;
    let cat = flow.create_and_start(&pod_id, &cat, &pod).await.unwrap();

    for protocol in EXEC_PROTOCOLS {
        // Output: the empty first message, then the container's ticks.
        let url = attach_url(&mut flow, &ticker, streams(false, true, false, false)).await;
        let (mut socket, chosen) = ws::connect(&url, protocol).await.unwrap();
        assert_eq!(chosen, protocol);
        assert_eq!(
            next(&mut socket, protocol).await,
            Some((1, vec![])),
            "{protocol:?}"
        );
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("tick") {
            if let Some((1, data)) = next(&mut socket, protocol).await {
                seen.extend_from_slice(&data);
            }
        }
        drop(socket);

        // Input: what we write to the container's stdin comes back from cat.
        let url = attach_url(&mut flow, &cat, streams(true, true, false, false)).await;
        let (mut socket, _) = ws::connect(&url, protocol).await.unwrap();
        let line = format!("ping {protocol:?}\n");
        ws::send_in(&mut socket, protocol, 0, line.as_bytes())
            .await
            .unwrap();
        let mut echoed = Vec::new();
        while !String::from_utf8_lossy(&echoed).contains(&line) {
            match next(&mut socket, protocol).await {
                Some((1, data)) => echoed.extend_from_slice(&data),
                Some(_) => {}
                None => panic!("{protocol:?}: closed; got {echoed:?}"),
            }
        }
        drop(socket);
    }
    flow.cleanup_all().await.unwrap();
}

/// What a GET to `port` in the pod answers, over a forward with no protocol named; what came
/// within 2 s.
async fn http_get(flow: &mut PodFlow, pod_id: &str, port: i32) -> String {
    let url = port_forward_url(flow, pod_id, &[port]).await;
    let (mut socket, _) = ws::connect(&url, "").await.unwrap();
    ws::send(&mut socket, 0, b"GET / HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = async {
        while let Some((ch, data)) = next(&mut socket, "").await {
            if ch == 0 {
                got.extend_from_slice(&data);
            }
        }
    };
    let _ = tokio::time::timeout(2 * SECOND, read).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn port_forward_over_every_upstream_protocol() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("wspf", &env.log_dir("wspf"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let script = "mkdir -p /w80 /w81; echo page-80 > /w80/index.html; \
                  echo page-81 > /w81/index.html; httpd -p 80 -h /w80; httpd -p 81 -h /w81; \
                  sleep 3600";
    let c = shell_container("web", &env.image, script);
    flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    // Both servers up before the first forward.
    let deadline = Instant::now() + 10 * SECOND;
    while !http_get(&mut flow, &pod_id, 81)
        .await
        .ends_with("page-81\n")
    {
        assert!(Instant::now() < deadline, "httpd never answered");
        tokio::time::sleep(SECOND / 5).await;
    }

    for protocol in PORTFORWARD_PROTOCOLS {
        // Ports 80, 81 and 9 (nobody listens): channels 0/1, 2/3 and 4/5. The query's port
        // is not what is forwarded: the request's ports are, as upstream.
        let url = port_forward_url(&mut flow, &pod_id, &[80, 81, 9]).await;
        let (mut socket, chosen) = ws::connect(&format!("{url}?port=81"), protocol)
            .await
            .unwrap();
        assert_eq!(chosen, protocol);
        for ch in [0, 2] {
            ws::send_in(&mut socket, protocol, ch, b"GET / HTTP/1.0\r\n\r\n")
                .await
                .unwrap();
        }
        let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
        let done = |got: &HashMap<u8, Vec<u8>>| {
            let text = |ch: u8| String::from_utf8_lossy(got.get(&ch).map_or(&[][..], |d| d));
            text(0).ends_with("page-80\n")
                && text(2).ends_with("page-81\n")
                && text(5).contains("port 9")
                && got.get(&1).is_some_and(|d| d.len() >= 2)
                && got.get(&3).is_some_and(|d| d.len() >= 2)
                && got.get(&4).is_some_and(|d| d.len() >= 2)
        };
        while !done(&got) {
            let Some((ch, data)) = next(&mut socket, protocol).await else {
                panic!("{protocol:?}: closed; got {got:?}");
            };
            got.entry(ch).or_default().extend_from_slice(&data);
        }
        // Each channel starts with its port, two bytes little-endian.
        for (ch, port) in [(0u8, 80u16), (1, 80), (2, 81), (3, 81), (4, 9), (5, 9)] {
            assert_eq!(&got[&ch][..2], &port.to_le_bytes(), "{protocol:?} {ch}");
        }
        let refused = String::from_utf8_lossy(&got[&5][2..]).into_owned();
        assert!(
            refused.starts_with("error forwarding port 9 to pod"),
            "{refused}"
        );
        drop(socket);
    }
    flow.cleanup_all().await.unwrap();
}

#[tokio::test]
async fn handshakes_upstream_refuses_are_refused() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("wsrefuse", &env.log_dir("wsrefuse"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let c = shell_container("app", &env.image, "sleep 3600");
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    let out = streams(false, true, false, false);

    // No protocol in common: 403, and the URL is used up, as upstream.
    for offered in [
        "v1.channel.k8s.io",
        "portforward.k8s.io",
        "v9.channel.k8s.io, x",
    ] {
        let url = exec_url(&mut flow, &id, &["true"], out).await;
        let (status, _) = ws::handshake_status(&url, "GET", offered, "13")
            .await
            .unwrap();
        assert_eq!(status, 403, "exec offering {offered}");
        let (status, _) = ws::handshake_status(&url, "GET", V5, "13").await.unwrap();
        assert_eq!(status, 404, "a refused handshake spends its token");
    }
    // Port-forward's set is its own: exec's protocols and SPDY's name are refused.
    for offered in [
        V5,
        "channel.k8s.io",
        "base64.channel.k8s.io",
        "portforward.k8s.io",
    ] {
        let url = port_forward_url(&mut flow, &pod_id, &[80]).await;
        let (status, _) = ws::handshake_status(&url, "GET", offered, "13")
            .await
            .unwrap();
        assert_eq!(status, 403, "port-forward offering {offered}");
    }
    // Not a GET: 405. A version other than 13: 400, naming 13.
    let url = exec_url(&mut flow, &id, &["true"], out).await;
    let (status, _) = ws::handshake_status(&url, "POST", V5, "13").await.unwrap();
    assert_eq!(status, 405);
    let url = exec_url(&mut flow, &id, &["true"], out).await;
    let (status, headers) = ws::handshake_status(&url, "GET", V5, "8").await.unwrap();
    assert_eq!(status, 400);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "sec-websocket-version" && v == "13"),
        "{headers:?}"
    );
    // Accepted, a handshake with no protocol is answered without one.
    let url = exec_url(&mut flow, &id, &["true"], out).await;
    let (status, headers) = ws::handshake_status(&url, "GET", "", "13").await.unwrap();
    assert_eq!(status, 101);
    assert!(
        !headers.iter().any(|(k, _)| k == "sec-websocket-protocol"),
        "{headers:?}"
    );
    flow.cleanup_all().await.unwrap();
}
