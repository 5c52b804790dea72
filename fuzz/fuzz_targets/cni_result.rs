//! CNI results as plugins print them (0.3.0 to 1.0.0): parsing never panics, interface indexes
//! of accepted results are in range, addresses print and parse back the same, and choosing the
//! pod IP works on anything accepted.
#![no_main]

use crius::fuzzing::{CniResult, IpNet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(net) = s.parse::<IpNet>() {
            assert_eq!(net.to_string().parse::<IpNet>(), Ok(net), "{s:?}");
        }
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(result) = CniResult::parse(value) else {
        return;
    };
    for ip in &result.ips {
        if let Some(i) = ip.interface {
            assert!(
                i < result.interfaces.len(),
                "interface index {i} out of range accepted"
            );
        }
        let printed = ip.address.to_string();
        assert_eq!(printed.parse::<IpNet>(), Ok(ip.address), "{printed:?}");
    }
    for route in &result.routes {
        let printed = route.dst.to_string();
        assert_eq!(printed.parse::<IpNet>(), Ok(route.dst), "{printed:?}");
    }
    let v4 = result.first_ip(false);
    let v6 = result.first_ip(true);
    assert!(v4.is_none_or(|a| a.is_ipv4()));
    assert!(v6.is_none_or(|a| a.is_ipv6()));
});
