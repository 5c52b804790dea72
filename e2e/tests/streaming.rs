//! The streaming server end to end: Exec, Attach and PortForward URLs used with our own SPDY
//! and WebSocket clients (crius_e2e::streaming_client) against busybox containers in real pods.
//! Every WebSocket subprotocol, one by one: streaming_websocket.rs.

use std::time::{Duration, Instant};

use crius_e2e::cri::api::{AttachRequest, ContainerState, ExecRequest, PortForwardRequest};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container, sleep_container};
use crius_e2e::streaming_client::spdy::{self, Event};
use crius_e2e::streaming_client::urls::exec_url;
use crius_e2e::streaming_client::{Streams, ws};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);
const V4: &str = "v4.channel.k8s.io";
const V5: &str = "v5.channel.k8s.io";

fn out_only() -> Streams {
    Streams {
        stdout: true,
        stderr: true,
        ..Streams::default()
    }
}

async fn start_pod(env: &PodEnv, name: &str, script: &str) -> (PodFlow, String, String) {
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config(name, &env.log_dir(name));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let c = shell_container("app", &env.image, script);
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    (flow, pod_id, id)
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn exec_over_spdy_and_websocket() {
    let env = PodEnv::start_with(|b| b.config_value("streaming.token_ttl", "2s"))
        .await
        .unwrap();
    let (mut flow, _pod, id) = start_pod(&env, "exec", "sleep 3600").await;
    let run = |url: String,
               protocol: &'static str,
               s: Streams,
               input: Option<&'static [u8]>,
               size| async move {
        if protocol == V5 || protocol.starts_with("ws:") {
            let p = protocol.trim_start_matches("ws:");
            ws::run_session(&url, p, s, input, size, 1 << 20, 30 * SECOND).await
        } else {
            spdy::run_session(&url, protocol, s, input, size, 1 << 20, 30 * SECOND).await
        }
    };

    // Output on both streams, a Success status.
    let url = exec_url(
        &mut flow,
        &id,
        &["sh", "-c", "echo out; echo err >&2"],
        out_only(),
    )
    .await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let out = run(url, V4, out_only(), None, None).await.unwrap();
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.error, r#"{"metadata":{},"status":"Success"}"#);

    // The exit code comes back as kubelet writes it.
    let url = exec_url(&mut flow, &id, &["sh", "-c", "exit 3"], out_only()).await;
    let out = run(url, V4, out_only(), None, None).await.unwrap();
    assert_eq!(out.exit_code(), Some(3), "{}", out.error);
    let status: serde_json::Value = serde_json::from_str(&out.error).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("command terminated with non-zero exit code: ")
    );

    // stdin round trip: cat echoes and ends at the end of input.
    let with_stdin = Streams {
        stdin: true,
        ..out_only()
    };
    let url = exec_url(&mut flow, &id, &["cat"], with_stdin).await;
    let out = run(url, V4, with_stdin, Some(b"hello spdy\n"), None)
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "hello spdy\n");
    assert_eq!(out.exit_code(), Some(0));
    let url = exec_url(&mut flow, &id, &["cat"], with_stdin).await;
    let out = run(url, V5, with_stdin, Some(b"hello websocket\n"), None)
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "hello websocket\n");
    assert_eq!(out.exit_code(), Some(0));

    // WebSocket v4: exit codes too.
    let url = exec_url(&mut flow, &id, &["sh", "-c", "echo x; exit 7"], out_only()).await;
    let out = run(url, "ws:v4.channel.k8s.io", out_only(), None, None)
        .await
        .unwrap();
    assert_eq!(
        (out.stdout_text().as_str(), out.exit_code()),
        ("x\n", Some(7))
    );

    // A terminal, with its size from the resize stream (SPDY) and channel (WebSocket).
    let tty = Streams {
        stdin: true,
        stdout: true,
        tty: true,
        ..Streams::default()
    };
    let url = exec_url(&mut flow, &id, &["stty", "size"], tty).await;
    let out = run(url, V4, tty, None, Some((123, 45))).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "45 123", "{:?}", out);
    let url = exec_url(&mut flow, &id, &["sh", "-c", "stty size; tty"], tty).await;
    let out = run(url, V5, tty, None, Some((100, 30))).await.unwrap();
    let text = out.stdout_text();
    assert!(text.starts_with("30 100\r\n"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");

    // Tokens are single-use and expire.
    let url = exec_url(&mut flow, &id, &["true"], out_only()).await;
    run(url.clone(), V4, out_only(), None, None).await.unwrap();
    let (status, _, _) = spdy::upgrade(&url, &[("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
        .await
        .unwrap();
    assert_eq!(status, 404, "a used token");
    let url = exec_url(&mut flow, &id, &["true"], out_only()).await;
    tokio::time::sleep(3 * SECOND).await;
    let (status, _, _) = spdy::upgrade(&url, &[("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
        .await
        .unwrap();
    assert_eq!(status, 404, "an expired token");
    let url = exec_url(&mut flow, &id, &["true"], out_only()).await;
    assert!(
        ws::connect(&url.replace("/exec/", "/exec/00"), V5)
            .await
            .is_err()
    );
    assert!(
        ws::connect(&url, "v1.channel.k8s.io").await.is_err(),
        "no such protocol"
    );

    // A client that goes away takes its process with it.
    let url = exec_url(&mut flow, &id, &["sleep", "4242"], out_only()).await;
    let mut client = spdy::Client::connect(&url, &[V4]).await.unwrap();
    client.open(&[("streamType", "error")], true).await.unwrap();
    client
        .open(&[("streamType", "stdout")], false)
        .await
        .unwrap();
    client
        .open(&[("streamType", "stderr")], false)
        .await
        .unwrap();
    let running = |flow: &mut PodFlow| {
        let id = id.clone();
        let mut flow = PodFlow::new(flow.client.clone());
        async move {
            let ps = flow.exec_sync(&id, &["ps"], 10 * SECOND).await.unwrap();
            String::from_utf8_lossy(&ps.stdout).contains("sleep 4242")
        }
    };
    let deadline = Instant::now() + 10 * SECOND;
    while !running(&mut flow).await {
        assert!(Instant::now() < deadline, "the exec never started");
        tokio::time::sleep(SECOND / 10).await;
    }
    drop(client);
    let deadline = Instant::now() + 10 * SECOND;
    while running(&mut flow).await {
        assert!(Instant::now() < deadline, "the exec outlived its client");
        tokio::time::sleep(SECOND / 10).await;
    }

    // Requests the kubelet would refuse.
    let bad = |cmd: &[&str], s: Streams, container: &str| ExecRequest {
        container_id: container.to_string(),
        cmd: cmd.iter().map(|c| c.to_string()).collect(),
        tty: s.tty,
        stdin: s.stdin,
        stdout: s.stdout,
        stderr: s.stderr,
    };
    let code = |r: Result<tonic::Response<_>, tonic::Status>| r.map(drop).unwrap_err().code();
    let tty_stderr = Streams {
        tty: true,
        ..out_only()
    };
    assert_eq!(
        code(flow.client.exec(bad(&["ls"], tty_stderr, &id)).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            flow.client
                .exec(bad(&["ls"], Streams::default(), &id))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            flow.client
                .exec(bad(&["ls"], out_only(), "nonexistent"))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(flow.client.exec(bad(&[], out_only(), &id)).await),
        Code::InvalidArgument
    );
    // Every exec's files (monitor socket, exit file, monitor log) go: an exec whose client left
    // first waits for its process's exit file, so they may go a moment after the client's end.
    let exec_dir = env.crius.runroot().join("exec");
    let deadline = Instant::now() + 20 * SECOND;
    loop {
        let left: Vec<_> = std::fs::read_dir(&exec_dir).unwrap().collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    flow.cleanup_all().await.unwrap();
}

#[tokio::test]
async fn large_exec_output_is_intact_and_memory_stays_bounded() {
    let env = PodEnv::start().await.unwrap();
    let (mut flow, _pod, id) = start_pod(&env, "big", "sleep 3600").await;
    let pid = env.crius.pid().unwrap();
    let before = vm_rss_kib(pid);
    const SIZE: u64 = 100 * 1024 * 1024;
    let cmd = ["head", "-c", "104857600", "/dev/zero"];

    // A reader that stops for a while: the daemon must not buffer the output meanwhile.
    let url = exec_url(&mut flow, &id, &cmd, out_only()).await;
    let mut client = spdy::Client::connect(&url, &[V4]).await.unwrap();
    let error = client.open(&[("streamType", "error")], true).await.unwrap();
    let stdout = client
        .open(&[("streamType", "stdout")], false)
        .await
        .unwrap();
    client
        .open(&[("streamType", "stderr")], false)
        .await
        .unwrap();
    let (mut got, mut peak, mut status, mut nonzero) = (0u64, 0u64, String::new(), false);
    let started = Instant::now();
    let mut paused = false;
    while let Some(event) = tokio::time::timeout(60 * SECOND, client.events.recv())
        .await
        .expect("exec stalled")
    {
        match event {
            Event::Data(s, data) if s == stdout => {
                got += data.len() as u64;
                nonzero |= data.iter().any(|b| *b != 0);
            }
            Event::Data(s, data) if s == error => status.push_str(&String::from_utf8_lossy(&data)),
            _ => {}
        }
        if !paused && got > 10 * 1024 * 1024 {
            paused = true;
            for _ in 0..20 {
                tokio::time::sleep(SECOND / 10).await;
                peak = peak.max(vm_rss_kib(pid));
            }
        }
        if got % (8 << 20) < 65536 {
            peak = peak.max(vm_rss_kib(pid));
        }
    }
    assert_eq!(got, SIZE, "stdout bytes");
    assert!(!nonzero, "stdout was not all zeros");
    assert_eq!(status, r#"{"metadata":{},"status":"Success"}"#);
    let grown = peak.saturating_sub(before);
    eprintln!(
        "100 MiB in {:?}; daemon VmRSS {before} kB before, peak {peak} kB",
        started.elapsed()
    );
    assert!(grown < 48 * 1024, "daemon RSS grew by {grown} kB");

    // The same over WebSocket, read as fast as it comes.
    let url = exec_url(&mut flow, &id, &cmd, out_only()).await;
    let out = ws::run_session(&url, V5, out_only(), None, None, 0, 120 * SECOND)
        .await
        .unwrap();
    assert_eq!((out.stdout_len, out.stdout_nonzero), (SIZE, false));
    assert_eq!(out.exit_code(), Some(0));
    flow.cleanup_all().await.unwrap();
}

#[tokio::test]
async fn attach_shares_output_detaches_and_honours_stdin_once() {
    let env = PodEnv::start().await.unwrap();
    let (mut flow, pod_id, id) = start_pod(
        &env,
        "attach",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    )
    .await;
    let attach = |flow: &mut PodFlow, id: &str, s: Streams| {
        let mut client = flow.client.clone();
        let id = id.to_string();
        async move {
            client
                .attach(AttachRequest {
                    container_id: id,
                    stdin: s.stdin,
                    tty: s.tty,
                    stdout: s.stdout,
                    stderr: s.stderr,
                })
                .await
                .unwrap()
                .into_inner()
                .url
        }
    };
    // Two clients at once both see the ticks; leaving does not stop the container.
    let (u1, u2) = (
        attach(&mut flow, &id, out_only()).await,
        attach(&mut flow, &id, out_only()).await,
    );
    let watch = |url: String, protocol: &'static str| async move {
        let mut seen = Vec::new();
        if protocol == V5 {
            let (mut socket, _) = ws::connect(&url, V5).await.unwrap();
            use futures::StreamExt;
            while seen.len() < 300 {
                let Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(m))) =
                    socket.next().await
                else {
                    break;
                };
                if m.first() == Some(&1) {
                    seen.extend_from_slice(&m[1..]);
                }
            }
        } else {
            let mut client = spdy::Client::connect(&url, &[V4]).await.unwrap();
            client.open(&[("streamType", "error")], true).await.unwrap();
            let stdout = client
                .open(&[("streamType", "stdout")], false)
                .await
                .unwrap();
            client
                .open(&[("streamType", "stderr")], false)
                .await
                .unwrap();
            while seen.len() < 300 {
                match client.events.recv().await {
                    Some(Event::Data(s, d)) if s == stdout => seen.extend_from_slice(&d),
                    Some(_) => {}
                    None => break,
                }
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    };
    let (a, b) = tokio::join!(watch(u1, V4), watch(u2, V5));
    assert!(a.contains("tick "), "{a}");
    assert!(b.contains("tick "), "{b}");
    let line = |s: &str| s.lines().nth(1).unwrap_or("").to_string();
    assert!(
        b.contains(&line(&a)) || a.contains(&line(&b)),
        "{a:?} / {b:?}"
    );
    tokio::time::sleep(SECOND / 2).await;
    assert_eq!(
        flow.container_status(&id).await.unwrap().state,
        ContainerState::ContainerRunning as i32
    );

    // stdin_once: the first attach's end of input closes the container's stdin.
    let pod = pod_config("attach", &env.log_dir("attach"));
    let mut c = shell_container("cat", &env.image, "cat; echo cat-done");
    c.stdin = true;
    c.stdin_once = true;
    let cat = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    let with_stdin = Streams {
        stdin: true,
        ..out_only()
    };
    let url = attach(&mut flow, &cat, with_stdin).await;
    let out = spdy::run_session(
        &url,
        V4,
        with_stdin,
        Some(b"one\n"),
        None,
        4096,
        30 * SECOND,
    )
    .await
    .unwrap();
    assert_eq!(out.stdout_text(), "one\ncat-done\n");
    assert_eq!(out.error, r#"{"metadata":{},"status":"Success"}"#);
    flow.wait_container_exited(&cat, 10 * SECOND).await.unwrap();
    // The process may be seen gone a moment before its monitor wrote the exit code.
    let deadline = Instant::now() + 5 * SECOND;
    while flow.container_status(&cat).await.unwrap().exit_code != 0 {
        assert!(Instant::now() < deadline, "cat did not exit 0");
        tokio::time::sleep(SECOND / 10).await;
    }
    // A stopped container cannot be attached to.
    let err = flow
        .client
        .attach(AttachRequest {
            container_id: cat.clone(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    flow.cleanup_all().await.unwrap();
}

async fn http_get_spdy(client: &mut spdy::Client, port: u16, request_id: &str) -> (u32, u32) {
    let port = port.to_string();
    let error = client
        .open(
            &[
                ("streamType", "error"),
                ("port", &port),
                ("requestID", request_id),
            ],
            true,
        )
        .await
        .unwrap();
    let data = client
        .open(
            &[
                ("streamType", "data"),
                ("port", &port),
                ("requestID", request_id),
            ],
            false,
        )
        .await
        .unwrap();
    client
        .data(data, b"GET / HTTP/1.0\r\n\r\n", true)
        .await
        .unwrap();
    (error, data)
}

#[tokio::test]
async fn port_forward_into_the_pod() {
    let env = PodEnv::start().await.unwrap();
    let script = "mkdir -p /w80 /w81; echo page-80 > /w80/index.html; echo page-81 > /w81/index.html; \
                  httpd -p 80 -h /w80; httpd -p 81 -h /w81; sleep 3600";
    let (mut flow, pod_id, _id) = start_pod(&env, "pf", script).await;
    tokio::time::sleep(SECOND).await;
    let pf_url = |flow: &mut PodFlow, ports: Vec<i32>| {
        let mut client = flow.client.clone();
        let pod_id = pod_id.clone();
        async move {
            client
                .port_forward(PortForwardRequest {
                    pod_sandbox_id: pod_id,
                    port: ports,
                })
                .await
                .unwrap()
                .into_inner()
                .url
        }
    };

    // SPDY: two ports, two connections to one of them, and a refused port, in one session.
    let url = pf_url(&mut flow, vec![80, 81]).await;
    let mut client = spdy::Client::connect(&url, &["portforward.k8s.io"])
        .await
        .unwrap();
    assert_eq!(client.protocol, "portforward.k8s.io");
    let (_, d80) = http_get_spdy(&mut client, 80, "0").await;
    let (_, d81) = http_get_spdy(&mut client, 81, "1").await;
    let (_, d80b) = http_get_spdy(&mut client, 80, "2").await;
    let (e9, _) = http_get_spdy(&mut client, 9, "3").await;
    let mut bodies: std::collections::HashMap<u32, String> = Default::default();
    let mut done = std::collections::HashSet::new();
    let mut refused = String::new();
    while done.len() < 4 {
        let event = tokio::time::timeout(10 * SECOND, client.events.recv())
            .await
            .expect("port forward stalled")
            .expect("connection closed");
        match event {
            Event::Data(s, d) if s == e9 => refused.push_str(&String::from_utf8_lossy(&d)),
            Event::Data(s, d) => bodies
                .entry(s)
                .or_default()
                .push_str(&String::from_utf8_lossy(&d)),
            Event::Fin(s) if [d80, d81, d80b, e9].contains(&s) => {
                done.insert(s);
            }
            _ => {}
        }
    }
    assert!(bodies[&d80].ends_with("page-80\n"), "{:?}", bodies[&d80]);
    assert!(bodies[&d80b].ends_with("page-80\n"));
    assert!(bodies[&d81].ends_with("page-81\n"));
    assert!(refused.contains("port 9"), "{refused}");
    // The session is still up after the refusal.
    client.ping(1).await.unwrap();
    let (_, again) = http_get_spdy(&mut client, 81, "4").await;
    let mut body = String::new();
    loop {
        match tokio::time::timeout(10 * SECOND, client.events.recv())
            .await
            .unwrap()
        {
            Some(Event::Data(s, d)) if s == again => body.push_str(&String::from_utf8_lossy(&d)),
            Some(Event::Fin(s)) if s == again => break,
            Some(_) => {}
            None => panic!("session closed"),
        }
    }
    assert!(body.ends_with("page-81\n"), "{body}");
    drop(client);

    // WebSocket: one connection per port, channels 0/1 and 2/3, the port first on each.
    let url = pf_url(&mut flow, vec![80, 81]).await;
    let (mut socket, chosen) = ws::connect(&format!("{url}?port=80&port=81"), V4)
        .await
        .unwrap();
    assert_eq!(chosen, V4);
    ws::send(&mut socket, 0, b"GET / HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    ws::send(&mut socket, 2, b"GET / HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut got: std::collections::HashMap<u8, Vec<u8>> = Default::default();
    let deadline = Instant::now() + 10 * SECOND;
    use futures::StreamExt;
    loop {
        let done = |ch: u8, page: &str| {
            got.get(&ch)
                .is_some_and(|d| String::from_utf8_lossy(d).ends_with(page))
        };
        if done(0, "page-80\n") && done(2, "page-81\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        let message = tokio::time::timeout(10 * SECOND, socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Binary(m) = message {
            got.entry(m[0]).or_default().extend_from_slice(&m[1..]);
        }
    }
    // Each channel starts with its port, little-endian.
    assert_eq!(&got[&0][..2], &80u16.to_le_bytes());
    assert_eq!(&got[&2][..2], &81u16.to_le_bytes());
    assert_eq!(&got[&1][..2], &80u16.to_le_bytes());
    flow.cleanup_all().await.unwrap();
}

#[tokio::test]
async fn exec_in_a_stopped_container_and_pf_to_unknown_pods_are_refused() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("gone", &env.log_dir("gone"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let c = sleep_container("short", &env.image, 0);
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    flow.wait_container_exited(&id, 10 * SECOND).await.unwrap();
    let err = flow
        .client
        .exec(ExecRequest {
            container_id: id,
            cmd: vec!["ls".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = flow
        .client
        .port_forward(PortForwardRequest {
            pod_sandbox_id: "nonexistent".into(),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    flow.cleanup_all().await.unwrap();
}

#[tokio::test]
async fn tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let server = crius_e2e::tls::generate(&dir.path().join("server")).unwrap();
    let client = crius_e2e::tls::generate_client(&dir.path().join("client")).unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    let crius = crius_e2e::Crius::builder()
        .config_value("streaming.tls_cert", path(&server.server_cert))
        .config_value("streaming.tls_key", path(&server.server_key))
        .config_value("streaming.tls_client_ca", path(&client.ca_cert))
        .start()
        .await
        .unwrap();
    let log = crius.log();
    let url = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .expect("the streaming URL is logged")
        .to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let curl = |with_cert: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg("--cacert")
        .arg(&server.ca_cert);
        if with_cert {
            cmd.arg("--cert")
                .arg(&client.cert)
                .arg("--key")
                .arg(&client.key);
        }
        let out = cmd.arg(format!("{url}/exec/0123")).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A client the CA signed gets an HTTP answer (the token is bogus); others no TLS session.
    assert_eq!(curl(true), "404");
    assert_eq!(curl(false), "000");
}
