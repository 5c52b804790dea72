use std::path::{Path, PathBuf};
use std::process::Command as Cmd;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use super::*;

// ---------------------------------------------------------------- unit tests

#[test]
fn conf_file_is_wrapped_into_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("10-br.conf");
    std::fs::write(
        &p,
        r#"{"cniVersion":"0.4.0","name":"br","type":"bridge","bridge":"x"}"#,
    )
    .unwrap();
    let net = CniNetwork::load(&p).unwrap();
    assert_eq!(net.name, "br");
    assert_eq!(net.cni_version, "0.4.0");
    assert!(!net.disable_check);
    assert_eq!(net.plugins.len(), 1);
    assert_eq!(config::plugin_type(&net.plugins[0]), "bridge");
    assert_eq!(net.plugins[0]["bridge"], "x");
    assert_eq!(net.path.as_deref(), Some(p.as_path()));
}

#[test]
fn conflist_parses_and_bad_configs_fail() {
    let net = CniNetwork::parse(
        br#"{"cniVersion":"1.0.0","name":"n","disableCheck":true,
            "plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        Some("conflist"),
    )
    .unwrap();
    assert!(net.disable_check);
    assert_eq!(net.plugins.len(), 2);
    for bad in [
        r#"{"name":"n","plugins":[]}"#,
        r#"{"name":"n","plugins":[{"x":1}]}"#,
        r#"{"name":"n","plugins":[{"type":"../bin/sh"}]}"#,
        r#"{"plugins":[{"type":"bridge"}]}"#,
        r#"[1]"#,
        r#"{"name":"n"}"#,
    ] {
        assert!(
            CniNetwork::parse(bad.as_bytes(), Some("conflist")).is_err(),
            "{bad}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.conflist");
    std::fs::write(&p, "{nope").unwrap();
    let err = CniNetwork::load(&p).unwrap_err().to_string();
    assert!(err.contains("x.conflist"), "{err}");
}

#[test]
fn default_network_is_first_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(CniNetwork::load_default(dir.path()).unwrap(), None);
    std::fs::write(
        dir.path().join("20-b.conflist"),
        r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("10-a.conf"),
        r#"{"cniVersion":"1.0.0","name":"a","type":"ptp"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("00-readme.txt"), "x").unwrap();
    let net = CniNetwork::load_default(dir.path()).unwrap().unwrap();
    assert_eq!(net.name, "a");
    assert_eq!(net.path, Some(dir.path().join("10-a.conf")));
}

#[test]
fn plugin_stdin_injects_name_version_prev_result_and_runtime_config() {
    let net = CniNetwork::parse(
        br#"{"cniVersion":"1.0.0","name":"n","plugins":[
            {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false},
             "runtimeConfig":{"stale":1}},
            {"type":"bridge"}]}"#,
        None,
    )
    .unwrap();
    let mut caps = Map::new();
    caps.insert(
        "portMappings".into(),
        json!([{"hostPort": 1, "containerPort": 2}]),
    );
    caps.insert("bandwidth".into(), json!({"ingressRate": 1}));
    let prev = json!({"cniVersion": "1.0.0", "ips": []});
    let c = config::plugin_stdin(&net, &net.plugins[0], Some(&prev), &caps);
    assert_eq!(c["name"], "n");
    assert_eq!(c["cniVersion"], "1.0.0");
    assert_eq!(c["prevResult"], prev);
    assert_eq!(
        c["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 1, "containerPort": 2}]})
    );
    let c = config::plugin_stdin(&net, &net.plugins[1], None, &caps);
    assert!(c.get("runtimeConfig").is_none());
    assert!(c.get("prevResult").is_none());
}

#[test]
fn results_with_ipv4_and_ipv6_parse() {
    // Canned output of bridge + host-local with dual-stack ranges (CNI 1.0.0).
    let raw = json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "cni0", "mac": "0a:58:0a:f4:00:01"},
            {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:ff"},
            {"name": "eth0", "mac": "0a:58:0a:f4:00:05", "sandbox": "/var/run/netns/x"}
        ],
        "ips": [
            {"interface": 2, "address": "10.244.0.5/24", "gateway": "10.244.0.1"},
            {"interface": 2, "address": "fd00:10:244::5/64", "gateway": "fd00:10:244::1"}
        ],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00:10:244::1"}],
        "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}
    });
    let r = CniResult::parse(raw.clone()).unwrap();
    assert_eq!(r.raw, raw);
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(r.interfaces[2].sandbox, "/var/run/netns/x");
    assert_eq!(r.ips[1].address.to_string(), "fd00:10:244::5/64");
    assert_eq!(r.ips[1].address.prefix_len, 64);
    assert_eq!(r.ips[1].gateway, Some("fd00:10:244::1".parse().unwrap()));
    assert_eq!(r.ips[0].interface, Some(2));
    assert_eq!(r.routes[1].dst.to_string(), "::/0");
    assert_eq!(r.routes[0].gw, None);
    assert_eq!(r.dns.nameservers, vec!["10.96.0.10".to_string()]);
    assert_eq!(r.first_ip(false), Some("10.244.0.5".parse().unwrap()));
    assert_eq!(r.first_ip(true), Some("fd00:10:244::5".parse().unwrap()));

    // 0.4.0 style with "version", no interfaces.
    let r = CniResult::parse(json!({"cniVersion": "0.4.0",
        "ips": [{"version": "6", "address": "2001:db8::2/128"}]}))
    .unwrap();
    assert_eq!(
        r.ips[0].address.addr,
        "2001:db8::2".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(r.first_ip(true), Some("2001:db8::2".parse().unwrap()));

    for bad in [
        json!({"ips": [{"address": "10.0.0.1"}]}),
        json!({"ips": [{"address": "10.0.0.1/33"}]}),
        json!({"ips": [{"address": "10.0.0.1/24", "interface": 0}]}),
        json!({"ip4": {"ip": "10.0.0.1/24"}}),
    ] {
        assert!(CniResult::parse(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn cache_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let v = json!({"cniVersion": "1.0.0", "ips": []});
    assert_eq!(cache::read(dir.path(), "n", "c1", "eth0").unwrap(), None);
    let mut caps = Map::new();
    caps.insert("portMappings".into(), json!([{"hostPort": 1}]));
    cache::write(dir.path(), "n", "c1", "eth0", &v, &caps).unwrap();
    let c = cache::read(dir.path(), "n", "c1", "eth0").unwrap().unwrap();
    assert_eq!(c.result, v);
    assert_eq!(c.capability_args, caps);
    assert!(dir.path().join("results/n-c1-eth0").is_file());
    cache::remove(dir.path(), "n", "c1", "eth0").unwrap();
    cache::remove(dir.path(), "n", "c1", "eth0").unwrap();
    assert_eq!(cache::read(dir.path(), "n", "c1", "eth0").unwrap(), None);
    // Only the entry remains in the directory: no temporary files left behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("results"))
            .unwrap()
            .count(),
        0
    );
}

/// A fake plugin (shell script) that records its environment and stdin and prints `output`.
fn fake_plugin(dir: &Path, name: &str, output: &str, exit: i32) {
    let rec = dir.join(format!("{name}.log"));
    let script = format!(
        "#!/bin/sh\n{{ echo \"$CNI_COMMAND|$CNI_CONTAINERID|$CNI_NETNS|$CNI_IFNAME|$CNI_PATH|$CNI_ARGS\"; cat; echo; }} >> {}\ncat <<'EOF'\n{output}\nEOF\nexit {exit}\n",
        rec.display()
    );
    let p = dir.join(name);
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn fake_plugins_chain_env_error_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let r1 = r#"{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}"#;
    fake_plugin(&bin, "one", r1, 0);
    fake_plugin(
        &bin,
        "two",
        r#"{"cniVersion":"1.0.0","code":7,"msg":"no way","details":"because"}"#,
        1,
    );
    let net = CniNetwork::parse(
        br#"{"cniVersion":"1.0.0","name":"fake","plugins":[{"type":"one"},{"type":"two"}]}"#,
        None,
    )
    .unwrap();
    let cni = Cni::new(
        vec![dir.path().join("missing"), bin.clone()],
        dir.path().join("cache"),
    );
    let a = Attachment {
        container_id: "cid1",
        netns: Path::new("/proc/self/ns/net"),
        ifname: "eth0",
        args: vec![
            ("K8S_POD_NAME".into(), "p".into()),
            ("IgnoreUnknown".into(), "1".into()),
        ],
        capability_args: Map::new(),
    };
    let err = cni.add(&net, &a).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("two")
            && msg.contains("code 7")
            && msg.contains("no way")
            && msg.contains("because"),
        "{msg}"
    );
    match err {
        CniError::Plugin { plugin, error, .. } => {
            assert_eq!(plugin, "two");
            assert_eq!(error.code, 7);
        }
        other => panic!("{other}"),
    }
    let log1 = std::fs::read_to_string(bin.join("one.log")).unwrap();
    let log2 = std::fs::read_to_string(bin.join("two.log")).unwrap();
    let path = format!("{}:{}", dir.path().join("missing").display(), bin.display());
    assert!(
        log1.starts_with(&format!(
            "ADD|cid1|/proc/self/ns/net|eth0|{path}|K8S_POD_NAME=p;IgnoreUnknown=1\n"
        )),
        "{log1}"
    );
    // Rolled back: two got ADD then DEL, one got ADD then DEL; the DELs saw one's result.
    let cmds = |log: &str| {
        log.lines()
            .filter_map(|l| {
                l.split('|')
                    .next()
                    .filter(|c| ["ADD", "DEL", "CHECK"].contains(c))
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(cmds(&log1), ["ADD", "DEL"]);
    assert_eq!(cmds(&log2), ["ADD", "DEL"]);
    assert!(
        log2.contains(r#""prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}"#),
        "{log2}"
    );
    assert_eq!(
        cache::read(&cni.cache_dir, "fake", "cid1", "eth0").unwrap(),
        None
    );

    // Non-zero exit without an error object still fails, naming the plugin.
    fake_plugin(&bin, "two", "garbage", 3);
    let msg = cni.add(&net, &a).unwrap_err().to_string();
    assert!(msg.contains("two") && msg.contains("garbage"), "{msg}");

    // Success: cached; DEL gets the cached prevResult; DEL with a gone netns has an
    // empty CNI_NETNS; DEL twice is fine.
    fake_plugin(&bin, "two", r#"{"cniVersion":"1.0.0"}"#, 0);
    let net1 = CniNetwork::parse(
        br#"{"cniVersion":"1.0.0","name":"fake","plugins":[{"type":"two"},{"type":"one"}]}"#,
        None,
    )
    .unwrap();
    let r = cni.add(&net1, &a).unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.9.0.2/24");
    let gone = Attachment {
        netns: Path::new("/nonexistent/netns"),
        ..a.clone()
    };
    Cni::new(vec![bin.clone()], dir.path().join("cache"))
        .del(&net1, &gone)
        .unwrap();
    cni.del(&net1, &gone).unwrap();
    let log1 = std::fs::read_to_string(bin.join("one.log")).unwrap();
    assert!(log1.contains("DEL|cid1||eth0|"), "{log1}");

    // A plugin that is nowhere: named in the error.
    let bogus = CniNetwork::parse(
        br#"{"cniVersion":"1.0.0","name":"fake","plugins":[{"type":"crius-bogus"}]}"#,
        None,
    )
    .unwrap();
    let msg = cni.add(&bogus, &a).unwrap_err().to_string();
    assert!(msg.contains("crius-bogus"), "{msg}");
}

// ---------------------------------------------------------------- real plugins, as root

const PLUGIN_DIR: &str = "/usr/lib/cni";

/// Real-plugin tests change host state (netns, bridge, iptables); run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn can_run_real_plugins() -> bool {
    let root = Cmd::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let ok = root
        && ["bridge", "host-local", "portmap", "loopback"]
            .iter()
            .all(|p| Path::new(PLUGIN_DIR).join(p).is_file());
    if !ok {
        eprintln!("skipping: needs root and the CNI plugins in {PLUGIN_DIR}");
    }
    ok
}

fn sh(cmd: &str, args: &[&str]) -> (bool, String) {
    match Cmd::new(cmd).args(args).output() {
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

const PORTMAP_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
];

fn portmap_lock_file() -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("crius-e2e-portmap.lock"))
        .unwrap()
}

fn nat_chain_exists(chain: &str) -> bool {
    sh("iptables", &["-t", "nat", "-S", chain]).0
}

/// One test's host state; everything is removed on drop, pass or fail.
struct Fixture {
    _lock: std::sync::MutexGuard<'static, ()>,
    /// The e2e tests' portmap lock, shared while portmap's host chains are in use: another
    /// test process must not flush them under this one (e2e/src/pods/network.rs).
    portmap: Option<nix::fcntl::Flock<std::fs::File>>,
    n: u8,
    ns_name: String,
    ns_path: PathBuf,
    bridge: String,
    dir: tempfile::TempDir,
    cid: String,
    /// Networks to DEL on drop (the plugins' own cleanup: veth, IPAM, iptables).
    nets: Vec<CniNetwork>,
    forward_before: Option<String>,
}

impl Fixture {
    fn new(n: u8) -> Fixture {
        let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let portmap =
            nix::fcntl::Flock::lock(portmap_lock_file(), nix::fcntl::FlockArg::LockShared).ok();
        let ns_name = format!("crius-cni-test-{}-{n}", std::process::id());
        let forward_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok();
        let f = Fixture {
            _lock: lock,
            portmap,
            n,
            ns_path: PathBuf::from(format!("/var/run/netns/{ns_name}")),
            ns_name,
            bridge: format!("cniTest{n}"),
            dir: tempfile::tempdir().unwrap(),
            cid: format!("crius-test-{}-{n}", std::process::id()),
            nets: Vec::new(),
            forward_before,
        };
        let (ok, out) = sh("ip", &["netns", "add", &f.ns_name]);
        assert!(ok, "ip netns add: {out}");
        f
    }

    fn cni(&self) -> Cni {
        Cni::new(
            vec![PathBuf::from(PLUGIN_DIR)],
            self.dir.path().join("cache"),
        )
    }

    fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// bridge + `second` plugin, written to a .conflist and loaded.
    fn network(&mut self, second: Value) -> CniNetwork {
        let n = self.n;
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": format!("crius-test-{n}"),
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": format!("10.250.{n}.0/24")}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.ipam_dir(),
                    }
                },
                second
            ]
        });
        let p = self.dir.path().join(format!("{n}.conflist"));
        std::fs::write(&p, serde_json::to_vec(&conf).unwrap()).unwrap();
        let net = CniNetwork::load(&p).unwrap();
        self.nets.push(net.clone());
        net
    }

    fn attachment(&self, ports: Value) -> Attachment<'_> {
        let mut caps = Map::new();
        caps.insert("portMappings".into(), ports);
        Attachment {
            container_id: &self.cid,
            netns: &self.ns_path,
            ifname: "eth0",
            args: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAMESPACE".into(), "default".into()),
                ("K8S_POD_NAME".into(), format!("pod{}", self.n)),
                ("K8S_POD_INFRA_CONTAINER_ID".into(), self.cid.clone()),
                ("K8S_POD_UID".into(), "uid".into()),
            ],
            capability_args: caps,
        }
    }

    /// Addresses host-local has allocated (files named like IPs in its network dir).
    fn allocated(&self) -> Vec<String> {
        let dir = self.ipam_dir().join(format!("crius-test-{}", self.n));
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Host interfaces enslaved to the test bridge (the veths).
    fn bridge_ports(&self) -> String {
        sh("ip", &["-o", "link", "show", "master", &self.bridge]).1
    }

    fn nat_rules_for_container(&self) -> Vec<String> {
        sh("iptables-save", &["-t", "nat"])
            .1
            .lines()
            .filter(|l| l.contains(&self.cid))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let cni = self.cni();
        for net in std::mem::take(&mut self.nets) {
            let _ = cni.del(&net, &self.attachment(json!([])));
        }
        let _ = sh("ip", &["netns", "del", &self.ns_name]);
        if sh("ip", &["link", "show", &self.bridge]).0 {
            let _ = sh("ip", &["link", "del", &self.bridge]);
        }
        // The last test process using portmap's host chains removes them once idle, never
        // while another holds them (the lock protocol of e2e/src/pods/network.rs).
        self.portmap = None;
        if let Ok(_only_user) = nix::fcntl::Flock::lock(
            portmap_lock_file(),
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) && nat_chain_exists(PORTMAP_CHAINS[0])
            && !sh("iptables", &["-t", "nat", "-S", PORTMAP_CHAINS[0]])
                .1
                .lines()
                .any(|l| l.starts_with("-A "))
        {
            for chain in PORTMAP_CHAINS {
                for rule in sh("iptables", &["-t", "nat", "-S"]).1.lines() {
                    if rule.starts_with("-A ") && rule.ends_with(&format!("-j {chain}")) {
                        let mut args = vec!["-t", "nat", "-D"];
                        args.extend(rule[3..].split_whitespace());
                        let _ = sh("iptables", &args);
                    }
                }
                let _ = sh("iptables", &["-t", "nat", "-F", chain]);
                let _ = sh("iptables", &["-t", "nat", "-X", chain]);
            }
        }
        if let Some(v) = &self.forward_before {
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", v);
        }
    }
}

fn portmap() -> Value {
    json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": false})
}

#[test]
fn real_plugins_add_del() {
    if !can_run_real_plugins() {
        return;
    }
    let mut f = Fixture::new(1);
    let cni = f.cni();
    let net = f.network(portmap());
    let lo = CniNetwork::parse(
        br#"{"cniVersion":"1.0.0","name":"crius-test-lo","plugins":[{"type":"loopback"}]}"#,
        None,
    )
    .unwrap();
    f.nets.push(lo.clone());
    let a = f.attachment(json!([{"hostPort": 18081, "containerPort": 80, "protocol": "tcp"}]));

    let lo_result = cni.add(&lo, &a).unwrap();
    assert!(lo_result.ips.is_empty() || lo_result.ips[0].address.addr.is_loopback());
    let (ok, out) = sh("ip", &["-n", &f.ns_name, "link", "show", "lo"]);
    assert!(ok && out.contains("UP"), "{out}");

    let r = cni.add(&net, &a).unwrap();
    let ip = r.first_ip(false).expect("an IPv4 address");
    assert!(ip.to_string().starts_with("10.250.1."), "{ip}");
    assert_eq!(r.ips[0].address.prefix_len, 24);
    assert_eq!(r.ips[0].gateway, Some("10.250.1.1".parse().unwrap()));
    let eth0 = &r.interfaces[r.ips[0].interface.unwrap()];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.sandbox, f.ns_path.to_string_lossy());

    let (ok, out) = sh(
        "ip",
        &["-n", &f.ns_name, "-o", "addr", "show", "dev", "eth0"],
    );
    assert!(ok && out.contains(&format!("{ip}/24")), "{out}");
    let (ok, out) = sh("ip", &["-n", &f.ns_name, "route"]);
    assert!(
        ok && out.contains("default via 10.250.1.1 dev eth0"),
        "{out}"
    );
    let (ok, out) = sh("ip", &["-o", "addr", "show", "dev", &f.bridge]);
    assert!(ok && out.contains("10.250.1.1/24"), "{out}");
    assert!(f.bridge_ports().contains("veth"), "{}", f.bridge_ports());
    assert_eq!(f.allocated(), vec![ip.to_string()]);
    assert!(
        !f.nat_rules_for_container().is_empty(),
        "portmap made no rules"
    );

    cni.del(&net, &a).unwrap();
    assert!(!f.bridge_ports().contains("veth"), "{}", f.bridge_ports());
    assert_eq!(f.allocated(), Vec::<String>::new());
    assert_eq!(f.nat_rules_for_container(), Vec::<String>::new());
    let (_, out) = sh("ip", &["-n", &f.ns_name, "link"]);
    assert!(!out.contains("eth0"), "{out}");
    assert_eq!(
        cache::read(&cni.cache_dir, &net.name, &f.cid, "eth0").unwrap(),
        None
    );
    // Idempotent.
    cni.del(&net, &a).unwrap();
    cni.del(&lo, &a).unwrap();
    cni.del(&lo, &a).unwrap();
}

#[test]
fn real_plugins_del_after_restart_and_netns_gone() {
    if !can_run_real_plugins() {
        return;
    }
    let mut f = Fixture::new(2);
    let net = f.network(portmap());
    let a = f.attachment(json!([{"hostPort": 18082, "containerPort": 80, "protocol": "tcp"}]));
    let ip = f.cni().add(&net, &a).unwrap().first_ip(false).unwrap();
    assert_eq!(f.allocated(), vec![ip.to_string()]);

    // "Restart": a new Cni reads the cached result.
    let restarted = f.cni();
    let (ok, out) = sh("ip", &["netns", "del", &f.ns_name]);
    assert!(ok, "{out}");
    // The caller no longer knows the port mappings: the cached ones are used.
    let a = f.attachment(json!([]));
    restarted.del(&net, &a).unwrap();
    assert_eq!(f.allocated(), Vec::<String>::new());
    assert_eq!(f.nat_rules_for_container(), Vec::<String>::new());
    assert!(!f.bridge_ports().contains("veth"), "{}", f.bridge_ports());
    restarted.del(&net, &a).unwrap();
}

#[test]
fn real_plugins_failing_second_plugin_leaves_nothing() {
    if !can_run_real_plugins() {
        return;
    }
    let mut f = Fixture::new(3);
    let cni = f.cni();

    let bogus = f.network(json!({"type": "crius-bogus-plugin"}));
    let a = f.attachment(json!([]));
    let msg = cni.add(&bogus, &a).unwrap_err().to_string();
    assert!(msg.contains("crius-bogus-plugin"), "{msg}");
    assert_eq!(f.allocated(), Vec::<String>::new());
    assert!(!f.bridge_ports().contains("veth"), "{}", f.bridge_ports());
    let (_, out) = sh("ip", &["-n", &f.ns_name, "link"]);
    assert!(!out.contains("eth0"), "{out}");

    let net = f.network(portmap());
    let a = f.attachment(json!([{"hostPort": 18083, "containerPort": 0, "protocol": "tcp"}]));
    let err = cni.add(&net, &a).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, CniError::Plugin { plugin, .. } if plugin == "portmap"),
        "{msg}"
    );
    assert!(msg.contains("portmap") && msg.contains("Invalid"), "{msg}");
    assert_eq!(f.allocated(), Vec::<String>::new());
    assert!(!f.bridge_ports().contains("veth"), "{}", f.bridge_ports());
    assert_eq!(f.nat_rules_for_container(), Vec::<String>::new());
    assert_eq!(
        cache::read(&cni.cache_dir, &net.name, &f.cid, "eth0").unwrap(),
        None
    );
}
