//! CNI results (spec versions 0.3.0 through 1.0.0; the `version` field of 0.3.x/0.4.0 `ips`
//! is ignored). The raw JSON is kept for `prevResult`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

/// An address with a prefix length, `10.1.0.5/24` or `fd00::5/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<IpNet, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not an address/prefix"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|e| format!("{s:?}: invalid address: {e}"))?;
        let prefix_len: u8 = prefix
            .parse()
            .map_err(|e| format!("{s:?}: invalid prefix length: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(format!("{s:?}: prefix length over {max}"));
        }
        Ok(IpNet { addr, prefix_len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One interface the plugins created or configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    /// The namespace path for interfaces inside the sandbox, empty for host interfaces.
    pub sandbox: String,
}

/// One assigned address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`].
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: String,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The result of a network ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    /// The result as the last plugin printed it.
    pub raw: Value,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawResult {
    cni_version: String,
    interfaces: Vec<RawInterface>,
    ips: Vec<RawIp>,
    routes: Vec<RawRoute>,
    dns: RawDns,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawInterface {
    name: String,
    mac: String,
    sandbox: String,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    interface: Option<usize>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    #[serde(default)]
    gw: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDns {
    nameservers: Vec<String>,
    domain: String,
    search: Vec<String>,
    options: Vec<String>,
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|e| format!("{s:?}: invalid address: {e}"))
}

impl CniResult {
    /// Parse a plugin's ADD output.
    pub fn parse(raw: Value) -> Result<CniResult, String> {
        if raw.get("ip4").is_some() || raw.get("ip6").is_some() {
            return Err("CNI result version 0.2.0 and older (ip4/ip6) is not supported".into());
        }
        let r: RawResult = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        let interfaces: Vec<Interface> = r
            .interfaces
            .into_iter()
            .map(|i| Interface {
                name: i.name,
                mac: i.mac,
                sandbox: i.sandbox,
            })
            .collect();
        let ips = r
            .ips
            .into_iter()
            .map(|ip| {
                if let Some(i) = ip.interface
                    && i >= interfaces.len()
                {
                    return Err(format!(
                        "ip {}: interface index {i} out of range",
                        ip.address
                    ));
                }
                Ok(IpConfig {
                    address: ip.address.parse()?,
                    gateway: ip
                        .gateway
                        .as_deref()
                        .filter(|g| !g.is_empty())
                        .map(parse_ip)
                        .transpose()?,
                    interface: ip.interface,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let routes = r
            .routes
            .into_iter()
            .map(|rt| {
                Ok(Route {
                    dst: rt.dst.parse()?,
                    gw: rt
                        .gw
                        .as_deref()
                        .filter(|g| !g.is_empty())
                        .map(parse_ip)
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(CniResult {
            cni_version: r.cni_version,
            interfaces,
            ips,
            routes,
            dns: Dns {
                nameservers: r.dns.nameservers,
                domain: r.dns.domain,
                search: r.dns.search,
                options: r.dns.options,
            },
            raw,
        })
    }

    /// The first address of the given family on an interface inside the sandbox (or any
    /// address when no interface is named), as the pod IP is chosen.
    pub fn first_ip(&self, v6: bool) -> Option<IpAddr> {
        self.ips
            .iter()
            .filter(|ip| ip.address.addr.is_ipv6() == v6)
            .find(|ip| match ip.interface {
                Some(i) => self
                    .interfaces
                    .get(i)
                    .is_some_and(|i| !i.sandbox.is_empty()),
                None => true,
            })
            .map(|ip| ip.address.addr)
    }
}
