//! `TestNetwork` against the real world: the daemon reports NetworkReady with it, and Debian's
//! real bridge / host-local / portmap plugins accept its conflist (ADD and DEL run by hand in a
//! throw-away network namespace), leaving nothing behind after DEL.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crius_cri_api::v1::StatusRequest;
use crius_e2e::Crius;
use crius_e2e::pods::network::{PLUGIN_DIR, PORTMAP_CHAINS};
use crius_e2e::pods::{TestNetwork, leaked_iptables_rules};
use serde_json::{Value, json};

#[tokio::test]
async fn daemon_reports_network_ready_with_a_test_network() {
    let network = TestNetwork::new().unwrap();
    let crius = Crius::builder().network(&network).start().await.unwrap();
    let mut client = crius.runtime_client().await.unwrap();
    let response = client
        .status(StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let ready = response
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "NetworkReady")
        .unwrap();
    assert!(ready.status, "{ready:?}");
    let config: Value = serde_json::from_str(&response.info["config"]).unwrap();
    assert_eq!(
        config["network"]["network_dir"].as_str(),
        network.network_dir().to_str()
    );
    assert_eq!(config["network"]["plugin_dirs"], json!([PLUGIN_DIR]));
}

fn can_run_plugins() -> bool {
    // /proc/self belongs to the effective uid.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let plugins = ["bridge", "host-local", "portmap"]
        .iter()
        .all(|p| Path::new(PLUGIN_DIR).join(p).is_file());
    if !(root && plugins) {
        eprintln!("skipping: needs root and the CNI plugins in {PLUGIN_DIR}");
    }
    root && plugins
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    match Command::new(cmd).args(args).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// A named network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("crius-e2e-{}", std::process::id());
        let (ok, out) = run("ip", &["netns", "add", &name]);
        assert!(ok, "ip netns add {name}: {out}");
        Netns(name)
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// Runs one plugin of `conflist` the way a CNI runtime does; its stdout as JSON.
fn plugin(
    conflist: &Value,
    index: usize,
    command: &str,
    container_id: &str,
    netns: &str,
    prev: Option<&Value>,
) -> Result<Value, String> {
    let mut conf = conflist["plugins"][index].clone();
    conf["name"] = conflist["name"].clone();
    conf["cniVersion"] = conflist["cniVersion"].clone();
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    if conf["capabilities"]["portMappings"] == true {
        conf["runtimeConfig"] = json!({"portMappings": [
            {"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}
        ]});
    }
    let kind = conf["type"].as_str().unwrap_or_default().to_string();
    let mut child = Command::new(Path::new(PLUGIN_DIR).join(&kind))
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", PLUGIN_DIR)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{kind}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    stdin
        .write_all(&serde_json::to_vec(&conf).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{kind} {command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if out.stdout.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{kind} {command}: {e}"))
}

/// DEL of every plugin in reverse order (on drop too), so nothing outlives the test.
struct Attached<'a> {
    conflist: &'a Value,
    container_id: String,
    netns: String,
    result: Option<Value>,
}

impl Attached<'_> {
    fn del(&mut self) -> Result<(), String> {
        let Some(result) = self.result.take() else {
            return Ok(());
        };
        let count = self.conflist["plugins"].as_array().map_or(0, Vec::len);
        let mut errors = Vec::new();
        for i in (0..count).rev() {
            if let Err(e) = plugin(
                self.conflist,
                i,
                "DEL",
                &self.container_id,
                &self.netns,
                Some(&result),
            ) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        let _ = self.del();
    }
}

#[test]
fn real_plugins_accept_the_conflist_and_del_leaves_nothing() {
    if !can_run_plugins() {
        return;
    }
    let forward_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok();
    // portmap's host chains are in use until the DEL: no other test process may flush them.
    let portmap = crius_e2e::pods::network::portmap_in_use().unwrap();
    let chains_before = run("iptables", &["-t", "nat", "-S", PORTMAP_CHAINS[0]]).0;
    let network = TestNetwork::with_default_route().unwrap();
    let conflist = network.conflist();
    let netns = Netns::new();
    let mut attached = Attached {
        conflist: &conflist,
        container_id: format!("crius-e2e-cni-{}", std::process::id()),
        netns: netns.path(),
        result: None,
    };

    let mut result = None;
    for i in 0..conflist["plugins"].as_array().unwrap().len() {
        let out = plugin(
            &conflist,
            i,
            "ADD",
            &attached.container_id,
            &attached.netns,
            result.as_ref(),
        );
        // From the first success on, DEL must run even if a later plugin fails.
        attached.result = result.clone().or(out.as_ref().ok().cloned());
        result = Some(out.unwrap());
    }
    attached.result = result.clone();
    let result = result.unwrap();

    let address = result["ips"][0]["address"].as_str().unwrap();
    let ip = address.split('/').next().unwrap().parse().unwrap();
    assert!(
        network.contains(&ip),
        "{address} not in {}",
        network.subnet()
    );
    assert_eq!(network.allocated_ips(), [ip]);
    assert_eq!(
        network.bridge_ports().len(),
        1,
        "{:?}",
        network.bridge_ports()
    );
    let (ok, inside) = run(
        "ip",
        &[
            "netns", "exec", &netns.0, "ip", "-4", "-o", "addr", "show", "eth0",
        ],
    );
    assert!(ok && inside.contains(address), "{inside}");
    let (ok, routes) = run("ip", &["netns", "exec", &netns.0, "ip", "-4", "route"]);
    assert!(
        ok && routes.contains(&format!("default via {}", network.gateway())),
        "{routes}"
    );
    assert!(
        !network.leaked_iptables_rules().is_empty(),
        "portmap added no rule for the pod"
    );
    // The pod reaches its gateway (the host end of the bridge) and nothing else is needed.
    let (ok, ping) = run(
        "ip",
        &[
            "netns",
            "exec",
            &netns.0,
            "ping",
            "-c1",
            "-W2",
            &network.gateway().to_string(),
        ],
    );
    if !ok {
        eprintln!("ping of the gateway failed (no ping binary?): {ping}");
    }

    attached.del().unwrap();
    assert!(network.allocated_ips().is_empty());
    assert!(
        network.bridge_ports().is_empty(),
        "{:?}",
        network.bridge_ports()
    );
    assert_eq!(
        leaked_iptables_rules(&network.subnet()),
        Vec::<String>::new()
    );
    assert_eq!(network.leaked_iptables_rules(), Vec::<String>::new());

    let bridge = network.bridge().to_string();
    drop(portmap);
    drop(network);
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "bridge {bridge} survived the TestNetwork"
    );
    // The chains this test made are gone, unless another test process uses them by now (its
    // last network removes them then).
    if !chains_before && crius_e2e::pods::network::remove_idle_portmap_chains() {
        let left = run("iptables-save", &["-t", "nat"]).1;
        assert!(
            !left.contains("CNI-HOSTPORT"),
            "portmap chains left:\n{left}"
        );
    }
    if let Some(v) = forward_before {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", v);
    }
}
