//! [`TestNetwork`]: a CNI bridge network of its own for one test daemon.
//!
//! Each network gets a /24 out of 10.199.0.0/16 and a bridge named after it. The choice is
//! reserved with an `flock`ed file under `$TMPDIR/crius-e2e-netlocks`, so tests running in
//! parallel processes (nextest) never share one, and a subnet or bridge still present on the
//! host (a crashed run) is skipped. `ipMasq` is off and DNS never points at the host's
//! resolver: nothing a pod sends is NATed off this machine.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The plugin directory the test networks use (Debian's containernetworking-plugins).
pub const PLUGIN_DIR: &str = "/usr/lib/cni";
/// The conflist file name inside [`TestNetwork::network_dir`].
pub const CONFLIST_NAME: &str = "10-crius-test.conflist";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A CNI network configuration in its own temporary directory. Drop deletes the bridge.
///
/// Keep it alive longer than the daemon using it (declare it first).
pub struct TestNetwork {
    name: String,
    bridge: String,
    third_octet: u8,
    default_route: bool,
    dir: TempDir,
    // Held for the network's life: the subnet reservation.
    _lock: Flock<File>,
}

impl std::fmt::Debug for TestNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNetwork")
            .field("name", &self.name)
            .field("bridge", &self.bridge)
            .field("subnet", &self.subnet())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TestNetwork {
    /// Reserves a subnet and writes the conflist. Pods get no default route: only the /24 (and
    /// the host through the bridge address) is reachable, so nothing a test pod sends can be
    /// forwarded off this machine.
    pub fn new() -> Result<TestNetwork> {
        Self::create(false)
    }

    /// Like [`TestNetwork::new`] with a default route via the bridge (ipMasq stays off).
    pub fn with_default_route() -> Result<TestNetwork> {
        Self::create(true)
    }

    fn create(default_route: bool) -> Result<TestNetwork> {
        let (third_octet, lock) = reserve_subnet()?;
        let dir = tempfile::Builder::new()
            .prefix("crius-e2e-net-")
            .tempdir()
            .context("creating the network's temporary directory")?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let network = TestNetwork {
            name: format!("crius-e2e-{}-{n}-{third_octet}", std::process::id()),
            bridge: bridge_name(third_octet),
            third_octet,
            default_route,
            dir,
            _lock: lock,
        };
        std::fs::create_dir_all(network.network_dir())?;
        std::fs::create_dir_all(network.data_dir())?;
        std::fs::write(
            network.conflist_path(),
            serde_json::to_vec_pretty(&network.conflist())?,
        )
        .with_context(|| format!("writing {}", network.conflist_path().display()))?;
        Ok(network)
    }

    /// The CNI network name (unique per test).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bridge device name (at most 15 bytes).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// `10.199.<n>.0/24`.
    pub fn subnet(&self) -> String {
        format!("10.199.{}.0/24", self.third_octet)
    }

    /// `10.199.<n>.` — what every address of the subnet starts with.
    pub fn subnet_prefix(&self) -> String {
        format!("10.199.{}.", self.third_octet)
    }

    /// The bridge's address, the pods' gateway (host-local hands out `.1` to the gateway).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 199, self.third_octet, 1)
    }

    /// Whether `ip` belongs to this network's /24.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == [10, 199, self.third_octet])
    }

    /// The directory to give the daemon as `network.network_dir`.
    pub fn network_dir(&self) -> PathBuf {
        self.dir.path().join("net.d")
    }

    pub fn conflist_path(&self) -> PathBuf {
        self.network_dir().join(CONFLIST_NAME)
    }

    /// host-local's `dataDir`: allocations are files under `<data_dir>/<name>/`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// The plugin directories to give the daemon.
    pub fn plugin_dirs(&self) -> Vec<PathBuf> {
        vec![PathBuf::from(PLUGIN_DIR)]
    }

    /// The conflist this network writes: bridge (+ host-local) and portmap.
    pub fn conflist(&self) -> Value {
        let routes = if self.default_route {
            json!([{"dst": "0.0.0.0/0"}])
        } else {
            json!([])
        };
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    // Mandatory: pod traffic is never NATed off this machine.
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.subnet(), "gateway": self.gateway().to_string()}]],
                        "routes": routes,
                        "dataDir": self.data_dir(),
                    }
                },
                {
                    "type": "portmap",
                    "capabilities": {"portMappings": true}
                }
            ]
        })
    }

    /// Addresses host-local still has allocated for this network.
    pub fn allocated_ips(&self) -> Vec<IpAddr> {
        super::leak_check::allocated_ips(&self.data_dir())
    }

    /// Host interfaces (the pods' veths) enslaved to the bridge.
    pub fn bridge_ports(&self) -> Vec<String> {
        super::leak_check::bridge_ports(&self.bridge)
    }

    /// `iptables-save` lines that mention this network's subnet or name.
    pub fn leaked_iptables_rules(&self) -> Vec<String> {
        let by_name = format!("name: \\\"{}\\\"", self.name);
        iptables_save_lines()
            .into_iter()
            .filter(|l| l.contains(&self.subnet_prefix()) || l.contains(&by_name))
            .collect()
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        // The bridge plugin creates the bridge and never removes it; CNI DEL cleans the rest.
        let _ = delete_link(&self.bridge);
        // The last user of portmap's chains removes them once idle.
        let _ = remove_idle_portmap_chains();
    }
}

/// portmap's chains shared by every network on the host (nat table).
pub const PORTMAP_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
];

fn nat_chain_exists(chain: &str) -> bool {
    Command::new("iptables")
        .args(["-t", "nat", "-S", chain])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Held (shared) by a test that relies on portmap's chains while it runs: test processes run in
/// parallel, and [`remove_idle_portmap_chains`] of another test must not flush them under it.
pub struct PortmapInUse(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

fn portmap_lock_file() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("crius-e2e-portmap.lock"))
        .ok()
}

/// Takes the shared portmap lock (see [`PortmapInUse`]).
pub fn portmap_in_use() -> Result<PortmapInUse> {
    let file = portmap_lock_file().context("opening the portmap lock file")?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared)
        .map(PortmapInUse)
        .map_err(|(_, e)| anyhow::anyhow!("locking the portmap lock file: {e}"))
}

/// Removes portmap's shared chains (and the jumps to them) when no pod uses them, i.e.
/// `CNI-HOSTPORT-DNAT` holds no rule, and no test process holds [`PortmapInUse`] (a test that
/// is between creating the chains and adding its first rule would lose them). Returns whether
/// it could look; false leaves them to the last user.
pub fn remove_idle_portmap_chains() -> bool {
    // Skipped while any test relies on the chains; a later network's drop removes them.
    let Some(_exclusive) = portmap_lock_file()
        .and_then(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok())
    else {
        return false;
    };
    let rules = |chain: Option<&str>| -> Vec<String> {
        Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .args(chain)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| l.starts_with("-A "))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    if !nat_chain_exists(PORTMAP_CHAINS[0]) || !rules(Some(PORTMAP_CHAINS[0])).is_empty() {
        return true;
    }
    let iptables = |args: &[&str]| {
        let _ = Command::new("iptables")
            .args(["-t", "nat"])
            .args(args)
            .output();
    };
    for chain in PORTMAP_CHAINS {
        for rule in rules(None) {
            if rule.ends_with(&format!("-j {chain}")) {
                let words = split_rule(&rule[3..]);
                let mut args = vec!["-D"];
                args.extend(words.iter().map(String::as_str));
                iptables(&args);
            }
        }
        iptables(&["-F", chain]);
        iptables(&["-X", chain]);
    }
    true
}

/// `iptables-save` lines (all tables) that mention `subnet`, e.g. `"10.199.7.0/24"` or
/// `"10.199.7."`: a /24 is matched by its first three octets, so rules on single pod addresses
/// count too. Empty when `iptables-save` is missing.
pub fn leaked_iptables_rules(subnet: &str) -> Vec<String> {
    let needle = subnet_needle(subnet);
    iptables_save_lines()
        .into_iter()
        .filter(|l| l.contains(&needle))
        .collect()
}

/// `"10.199.7.0/24"` → `"10.199.7."`; anything else as given.
fn subnet_needle(subnet: &str) -> String {
    match subnet.strip_suffix(".0/24") {
        Some(prefix) => format!("{prefix}."),
        None => subnet.to_string(),
    }
}

fn iptables_save_lines() -> Vec<String> {
    Command::new("iptables-save")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("-A ") || l.starts_with(':'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Splits an `iptables -S` rule into arguments; `"..."` (with `\"` escapes) is one argument.
fn split_rule(rule: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut chars = rule.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => current.extend(chars.next()),
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// `ip link del <name>`; a link that does not exist is not an error.
pub fn delete_link(name: &str) -> Result<()> {
    if !link_exists(name) {
        return Ok(());
    }
    let out = Command::new("ip").args(["link", "del", name]).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("Cannot find device") {
        Ok(())
    } else {
        bail!("ip link del {name}: {stderr}")
    }
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn bridge_name(third_octet: u8) -> String {
    format!("crius-e2e{third_octet}")
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("crius-e2e-netlocks")
}

/// Picks a free third octet, starting at a pid-derived one, and locks it.
fn reserve_subnet() -> Result<(u8, Flock<File>)> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let in_use = host_ipv4_prefixes();
    let start = std::process::id()
        .wrapping_mul(7)
        .wrapping_add(COUNTER.load(Ordering::Relaxed));
    for i in 0..256u32 {
        let candidate = start.wrapping_add(i) % 256;
        let Ok(octet) = u8::try_from(candidate) else {
            continue;
        };
        if in_use.contains(&format!("10.199.{octet}.")) || link_exists(&bridge_name(octet)) {
            continue;
        }
        let path = dir.join(format!("10.199.{octet}"));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            return Ok((octet, lock));
        }
    }
    bail!("no free /24 in 10.199.0.0/16 (all 256 reserved or present on the host)")
}

/// `a.b.c.` of every IPv4 address on the host's interfaces.
fn host_ipv4_prefixes() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.split('/').next())
        .filter_map(|w| w.parse::<Ipv4Addr>().ok())
        .map(|ip| {
            let [a, b, c, _] = ip.octets();
            format!("{a}.{b}.{c}.")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_has_the_mandatory_shape() {
        let net = TestNetwork::with_default_route().unwrap();
        let written: Value =
            serde_json::from_slice(&std::fs::read(net.conflist_path()).unwrap()).unwrap();
        assert_eq!(written, net.conflist());
        assert_eq!(written["cniVersion"], "1.0.0");
        assert_eq!(written["name"], net.name());
        let plugins = written["plugins"].as_array().unwrap();
        let types: Vec<&str> = plugins
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        let bridge = &plugins[0];
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["hairpinMode"], true);
        assert!(net.bridge().len() <= 15, "{}", net.bridge());
        assert_eq!(bridge["bridge"], net.bridge());
        let ipam = &bridge["ipam"];
        assert_eq!(ipam["type"], "host-local");
        assert_eq!(ipam["ranges"][0][0]["subnet"], net.subnet());
        assert_eq!(ipam["routes"][0]["dst"], "0.0.0.0/0");
        let data_dir = PathBuf::from(ipam["dataDir"].as_str().unwrap());
        assert!(data_dir.starts_with(std::env::temp_dir()), "{data_dir:?}");
        assert_eq!(plugins[1]["capabilities"]["portMappings"], true);
        assert!(net.contains(&IpAddr::V4(net.gateway())));
        assert!(!net.contains(&"10.198.0.1".parse().unwrap()));
    }

    #[test]
    fn two_networks_never_share_a_subnet_or_bridge() {
        let a = TestNetwork::with_default_route().unwrap();
        let b = TestNetwork::new().unwrap();
        assert_ne!(a.subnet(), b.subnet());
        assert_ne!(a.bridge(), b.bridge());
        assert_ne!(a.name(), b.name());
        assert_eq!(b.conflist()["plugins"][0]["ipam"]["routes"], json!([]));
    }

    #[test]
    fn rules_split_like_a_shell() {
        assert_eq!(
            split_rule(r#"POSTROUTING -m comment --comment "CNI portfwd \"x\" y" -j MASQ"#),
            [
                "POSTROUTING",
                "-m",
                "comment",
                "--comment",
                "CNI portfwd \"x\" y",
                "-j",
                "MASQ"
            ]
        );
        assert_eq!(
            split_rule(r#"A --comment "" -j B"#),
            ["A", "--comment", "", "-j", "B"]
        );
    }

    #[test]
    fn subnet_needles() {
        assert_eq!(subnet_needle("10.199.7.0/24"), "10.199.7.");
        assert_eq!(subnet_needle("10.199.7."), "10.199.7.");
    }
}
