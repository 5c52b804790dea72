//! The streaming URLs a test asks the CRI for (Exec, Attach, PortForward); a refused request
//! panics, as the tests expect each to be granted.

use crate::cri::api::{AttachRequest, ExecRequest, PortForwardRequest};
use crate::pods::PodFlow;

use super::Streams;

pub async fn exec_url(flow: &mut PodFlow, id: &str, cmd: &[&str], s: Streams) -> String {
    flow.client
        .exec(ExecRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|c| c.to_string()).collect(),
            tty: s.tty,
            stdin: s.stdin,
            stdout: s.stdout,
            stderr: s.stderr,
        })
        .await
        .expect("Exec")
        .into_inner()
        .url
}

pub async fn attach_url(flow: &mut PodFlow, id: &str, s: Streams) -> String {
    flow.client
        .attach(AttachRequest {
            container_id: id.to_string(),
            stdin: s.stdin,
            stdout: s.stdout,
            stderr: s.stderr,
            tty: s.tty,
        })
        .await
        .expect("Attach")
        .into_inner()
        .url
}

pub async fn port_forward_url(flow: &mut PodFlow, pod_id: &str, ports: &[i32]) -> String {
    flow.client
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod_id.to_string(),
            port: ports.to_vec(),
        })
        .await
        .expect("PortForward")
        .into_inner()
        .url
}
