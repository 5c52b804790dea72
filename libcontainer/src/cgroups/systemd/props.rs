//! The unit properties crius hands systemd, built as plain data so that they can be checked
//! without a bus. systemd owns the knobs it has properties for and rewrites them whenever it
//! re-realizes the unit (`daemon-reload`, a sibling's change), so every resource it can express
//! is passed here as well as written through cgroupfs afterwards (runc's "systemd set + fs set").

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::CgroupVersion;
use super::super::v2::{cpu::shares_to_weight, io::blkio_weight_to_io, memory::limit_and_swap};
use super::path::SystemdPath;

/// systemd's "infinity" for limits (`UINT64_MAX`).
pub const INFINITY: u64 = u64::MAX;
/// systemd keeps CPUQuotaPerSecUSec in 10 ms steps; quotas are rounded up to it (as runc does)
/// so systemd's own value never throttles harder than the cgroupfs write.
const QUOTA_STEP_USEC: u64 = 10_000;
const DEFAULT_CFS_PERIOD: u64 = 100_000;
/// Highest CPU / memory node index accepted in a cpuset list (the kernel's NR_CPUS max is 8192).
const MAX_CPUSET_INDEX: u32 = 1 << 16;

/// One property value, in the D-Bus type systemd expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    /// `b`
    Bool(bool),
    /// `s`
    Str(String),
    /// `t`
    U64(u64),
    /// `au` (PIDs)
    U32s(Vec<u32>),
    /// `ay` (cpuset bitmasks)
    Bytes(Vec<u8>),
}

pub type Property = (&'static str, PropValue);

/// What the properties depend on besides the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub cgroup: CgroupVersion,
    /// systemd's major version (`Manager.Version`), which gates newer properties.
    pub systemd: u32,
}

/// Properties of a new unit: identity, placement, delegation, accounting and the resources.
/// `pid` joins the scope (a scope needs one); slices get none (the process joins by path).
pub fn start_properties(
    path: &SystemdPath,
    description: &str,
    pid: Option<u32>,
    host: &Host,
    r: &LinuxResources,
) -> Result<Vec<Property>, CgroupError> {
    let mut p: Vec<Property> = vec![("Description", PropValue::Str(description.to_string()))];
    if path.is_slice() {
        p.push(("Wants", PropValue::Str(path.slice.clone())));
    } else {
        p.push(("Slice", PropValue::Str(path.slice.clone())));
        // The container (and a nested runtime in it) may manage its own sub-cgroups.
        p.push(("Delegate", PropValue::Bool(true)));
        if let Some(pid) = pid {
            p.push(("PIDs", PropValue::U32s(vec![pid])));
        }
    }
    // No implicit ordering against shutdown.target etc.: the kubelet and crius stop containers.
    p.push(("DefaultDependencies", PropValue::Bool(false)));
    p.push(("MemoryAccounting", PropValue::Bool(true)));
    p.push(("CPUAccounting", PropValue::Bool(true)));
    match host.cgroup {
        CgroupVersion::V2 => p.push(("IOAccounting", PropValue::Bool(true))),
        CgroupVersion::V1 => p.push(("BlockIOAccounting", PropValue::Bool(true))),
    }
    if host.systemd >= 227 {
        p.push(("TasksAccounting", PropValue::Bool(true)));
    }
    p.extend(resource_properties(r, host)?);
    Ok(p)
}

/// The resources systemd can express, for `StartTransientUnit` and `SetUnitProperties`. Only
/// what `r` sets is listed, so an `update` with a partial document changes only that.
pub fn resource_properties(r: &LinuxResources, host: &Host) -> Result<Vec<Property>, CgroupError> {
    let v2 = host.cgroup == CgroupVersion::V2;
    let mut p: Vec<Property> = Vec::new();
    let u64p = |v: u64| PropValue::U64(v);

    if let Some(m) = r.memory() {
        let limit = m.limit().filter(|l| *l != 0);
        if v2 {
            let (max, swap_max) = limit_and_swap(m.limit(), m.swap())?;
            if let Some(max) = max {
                p.push(("MemoryMax", u64p(parse_max(&max))));
            }
            if let Some(sw) = swap_max.filter(|_| host.systemd >= 232) {
                p.push(("MemorySwapMax", u64p(parse_max(&sw))));
            }
            if let Some(res) = m.reservation().filter(|v| *v > 0) {
                p.push(("MemoryLow", u64p(res as u64)));
            }
        } else if let Some(l) = limit {
            p.push(("MemoryLimit", u64p(if l > 0 { l as u64 } else { INFINITY })));
        }
    }

    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            if v2 {
                p.push(("CPUWeight", u64p(shares_to_weight(shares))));
            } else {
                p.push(("CPUShares", u64p(shares)));
            }
        }
        let period = cpu.period().filter(|p| *p != 0);
        if let Some(q) = cpu.quota().filter(|q| *q != 0) {
            p.push(("CPUQuotaPerSecUSec", u64p(quota_per_sec(q, period))));
        }
        if let Some(per) = period.filter(|_| host.systemd >= 242) {
            p.push(("CPUQuotaPeriodUSec", u64p(per)));
        }
        if v2 && host.systemd >= 244 {
            if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
                p.push(("AllowedCPUs", PropValue::Bytes(cpuset_bits(cpus)?)));
            }
            if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
                p.push(("AllowedMemoryNodes", PropValue::Bytes(cpuset_bits(mems)?)));
            }
        }
    }

    if let Some(pids) = r.pids() {
        let l = pids.limit();
        p.push(("TasksMax", u64p(if l > 0 { l as u64 } else { INFINITY })));
    }

    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if v2 {
            p.push(("IOWeight", u64p(blkio_weight_to_io(w))));
        } else {
            p.push(("BlockIOWeight", u64p(u64::from(w))));
        }
    }

    if v2 && let Some(unified) = r.unified() {
        // Sorted, so that the list is deterministic; later entries win in systemd as in cgroupfs.
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        for (k, v) in keys {
            unified_property(k, v.trim(), &mut p);
        }
    }
    Ok(p)
}

/// The unified keys that shadow a systemd property: without it systemd would reset the file to
/// its own value on the next re-realization. Values it cannot parse stay cgroupfs-only.
fn unified_property(key: &str, value: &str, p: &mut Vec<Property>) {
    let num = |v: &str| -> Option<u64> {
        if v == "max" {
            Some(INFINITY)
        } else {
            v.parse().ok()
        }
    };
    let name = match key {
        "memory.max" => "MemoryMax",
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        "cpu.max" => {
            let mut it = value.split_whitespace();
            let quota = it.next().unwrap_or("max");
            let period: Option<u64> = it.next().and_then(|s| s.parse().ok());
            let per_sec = match quota {
                "max" => Some(INFINITY),
                q => q.parse::<i64>().ok().map(|q| quota_per_sec(q, period)),
            };
            if let Some(v) = per_sec {
                p.push(("CPUQuotaPerSecUSec", PropValue::U64(v)));
            }
            if let Some(per) = period {
                p.push(("CPUQuotaPeriodUSec", PropValue::U64(per)));
            }
            return;
        }
        _ => return,
    };
    if let Some(v) = num(value) {
        p.push((name, PropValue::U64(v)));
    }
}

/// "max" or a number, as produced by the v2 conversions.
fn parse_max(s: &str) -> u64 {
    s.parse().unwrap_or(INFINITY)
}

/// CFS quota per period → systemd's CPU time per second, rounded up to its 10 ms step; a
/// negative quota is no limit.
pub fn quota_per_sec(quota: i64, period: Option<u64>) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = period.filter(|p| *p != 0).unwrap_or(DEFAULT_CFS_PERIOD);
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec
        .div_ceil(QUOTA_STEP_USEC)
        .saturating_mul(QUOTA_STEP_USEC)
}

/// A cpuset list ("0-3,8") as systemd's bitmask: bit `i % 8` of byte `i / 8` is CPU (or node)
/// `i`.
pub fn cpuset_bits(list: &str) -> Result<Vec<u8>, CgroupError> {
    let bad = || CgroupError::InvalidResource(format!("invalid cpuset list {list:?}"));
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.trim().split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: u32 = lo.parse().map_err(|_| bad())?;
        let hi: u32 = hi.parse().map_err(|_| bad())?;
        if lo > hi || hi >= MAX_CPUSET_INDEX {
            return Err(bad());
        }
        let need = hi as usize / 8 + 1;
        if bytes.len() < need {
            bytes.resize(need, 0);
        }
        for i in lo..=hi {
            bytes[i as usize / 8] |= 1 << (i % 8);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::path::expand;
    use super::*;

    const V2: Host = Host {
        cgroup: CgroupVersion::V2,
        systemd: 252,
    };
    const V1: Host = Host {
        cgroup: CgroupVersion::V1,
        systemd: 252,
    };

    fn res(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a PropValue> {
        p.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn cpuset_bitmasks() {
        assert_eq!(cpuset_bits("0").unwrap(), vec![0b1]);
        assert_eq!(cpuset_bits("0-3").unwrap(), vec![0x0f]);
        assert_eq!(cpuset_bits("1,3").unwrap(), vec![0b1010]);
        assert_eq!(cpuset_bits("0-1,8").unwrap(), vec![0x03, 0x01]);
        assert_eq!(cpuset_bits("9").unwrap(), vec![0x00, 0x02]);
        assert_eq!(cpuset_bits(" 2 - 3 , 15 ").unwrap(), vec![0x0c, 0x80]);
        for bad in ["", "a", "3-1", "1-", "-1", "0-70000", "1,,2"] {
            assert!(cpuset_bits(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn quota_rounds_up_to_systemds_step() {
        assert_eq!(quota_per_sec(50_000, Some(100_000)), 500_000);
        assert_eq!(quota_per_sec(50_000, None), 500_000);
        assert_eq!(quota_per_sec(12_345, Some(100_000)), 130_000);
        assert_eq!(quota_per_sec(1_000, Some(1_000_000)), 10_000);
        assert_eq!(quota_per_sec(-1, None), INFINITY);
    }

    #[test]
    fn scope_start_properties() {
        let path = expand("kubepods-burstable-pod1.slice:crius:c1").unwrap();
        let p = start_properties(
            &path,
            "crius container c1",
            Some(42),
            &V2,
            &res(serde_json::json!({})),
        )
        .unwrap();
        assert_eq!(
            get(&p, "Slice"),
            Some(&PropValue::Str("kubepods-burstable-pod1.slice".into()))
        );
        assert_eq!(get(&p, "Delegate"), Some(&PropValue::Bool(true)));
        assert_eq!(get(&p, "PIDs"), Some(&PropValue::U32s(vec![42])));
        assert_eq!(
            get(&p, "DefaultDependencies"),
            Some(&PropValue::Bool(false))
        );
        for acct in [
            "MemoryAccounting",
            "CPUAccounting",
            "IOAccounting",
            "TasksAccounting",
        ] {
            assert_eq!(get(&p, acct), Some(&PropValue::Bool(true)), "{acct}");
        }
        assert_eq!(get(&p, "BlockIOAccounting"), None);
        assert_eq!(get(&p, "Wants"), None);
        let p1 = start_properties(&path, "d", Some(1), &V1, &LinuxResources::default()).unwrap();
        assert_eq!(get(&p1, "BlockIOAccounting"), Some(&PropValue::Bool(true)));
        assert_eq!(get(&p1, "IOAccounting"), None);
    }

    #[test]
    fn slice_start_properties() {
        let path = expand("::kubepods-pod1.slice").unwrap();
        let p = start_properties(&path, "d", Some(7), &V2, &LinuxResources::default()).unwrap();
        assert_eq!(
            get(&p, "Wants"),
            Some(&PropValue::Str("kubepods.slice".into()))
        );
        assert_eq!(get(&p, "PIDs"), None);
        assert_eq!(get(&p, "Slice"), None);
        assert_eq!(get(&p, "Delegate"), None);
    }

    #[test]
    fn v2_resources() {
        let r = res(serde_json::json!({
            "memory": {"limit": 268435456, "swap": 536870912, "reservation": 1048576},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 100},
            "blockIO": {"weight": 500},
        }));
        let p = resource_properties(&r, &V2).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&PropValue::U64(268435456)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&PropValue::U64(268435456)));
        assert_eq!(get(&p, "MemoryLow"), Some(&PropValue::U64(1048576)));
        assert_eq!(
            get(&p, "CPUWeight"),
            Some(&PropValue::U64(shares_to_weight(1024)))
        );
        assert_eq!(get(&p, "CPUWeight"), Some(&PropValue::U64(39)));
        assert_eq!(
            get(&p, "CPUQuotaPerSecUSec"),
            Some(&PropValue::U64(500_000))
        );
        assert_eq!(
            get(&p, "CPUQuotaPeriodUSec"),
            Some(&PropValue::U64(100_000))
        );
        assert_eq!(get(&p, "AllowedCPUs"), Some(&PropValue::Bytes(vec![0x03])));
        assert_eq!(
            get(&p, "AllowedMemoryNodes"),
            Some(&PropValue::Bytes(vec![0x01]))
        );
        assert_eq!(get(&p, "TasksMax"), Some(&PropValue::U64(100)));
        assert_eq!(
            get(&p, "IOWeight"),
            Some(&PropValue::U64(blkio_weight_to_io(500)))
        );
        assert_eq!(get(&p, "CPUShares"), None);
        assert_eq!(get(&p, "MemoryLimit"), None);
    }

    #[test]
    fn v1_resources() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1000000},
            "cpu": {"shares": 512, "quota": 20000, "cpus": "0"},
            "pids": {"limit": -1},
            "blockIO": {"weight": 300},
        }));
        let p = resource_properties(&r, &V1).unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&PropValue::U64(1000000)));
        assert_eq!(get(&p, "CPUShares"), Some(&PropValue::U64(512)));
        assert_eq!(
            get(&p, "CPUQuotaPerSecUSec"),
            Some(&PropValue::U64(200_000))
        );
        assert_eq!(get(&p, "TasksMax"), Some(&PropValue::U64(INFINITY)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&PropValue::U64(300)));
        // cpusets are not a systemd property on v1: cgroupfs only.
        assert_eq!(get(&p, "AllowedCPUs"), None);
        assert_eq!(get(&p, "MemoryMax"), None);
        assert_eq!(get(&p, "CPUWeight"), None);
    }

    #[test]
    fn unlimited_and_unset_values() {
        let r = res(serde_json::json!({"memory": {"limit": -1}, "cpu": {"quota": -1}}));
        let p = resource_properties(&r, &V2).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&PropValue::U64(INFINITY)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&PropValue::U64(INFINITY)));
        assert_eq!(
            get(&p, "CPUQuotaPerSecUSec"),
            Some(&PropValue::U64(INFINITY))
        );
        // 0 means unset: nothing is listed.
        let r = res(
            serde_json::json!({"memory": {"limit": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0}}),
        );
        assert!(resource_properties(&r, &V2).unwrap().is_empty());
        assert!(
            resource_properties(&LinuxResources::default(), &V2)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn old_systemd_gets_fewer_properties() {
        let old = Host {
            cgroup: CgroupVersion::V2,
            systemd: 230,
        };
        let r = res(serde_json::json!({
            "memory": {"limit": 2000, "swap": 4000},
            "cpu": {"quota": 1000, "period": 10000, "cpus": "0"},
        }));
        let p = resource_properties(&r, &old).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&PropValue::U64(2000)));
        assert_eq!(get(&p, "MemorySwapMax"), None);
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), None);
        assert_eq!(get(&p, "AllowedCPUs"), None);
        let path = expand("system.slice:crius:x").unwrap();
        let p = start_properties(&path, "d", Some(1), &old, &LinuxResources::default()).unwrap();
        assert_eq!(get(&p, "TasksAccounting"), Some(&PropValue::Bool(true)));
    }

    #[test]
    fn invalid_resources_are_errors() {
        let r = res(serde_json::json!({"memory": {"limit": 2000, "swap": 1000}}));
        assert!(matches!(
            resource_properties(&r, &V2),
            Err(CgroupError::InvalidResource(_))
        ));
        let r = res(serde_json::json!({"cpu": {"cpus": "0-x"}}));
        assert!(matches!(
            resource_properties(&r, &V2),
            Err(CgroupError::InvalidResource(_))
        ));
    }

    #[test]
    fn unified_keys_that_systemd_owns() {
        let r = res(serde_json::json!({"unified": {
            "memory.high": "1000000", "memory.min": "max", "cpu.max": "20000 50000",
            "pids.max": "max", "io.max": "8:0 rbps=1", "memory.oom.group": "1"
        }}));
        let p = resource_properties(&r, &V2).unwrap();
        assert_eq!(get(&p, "MemoryHigh"), Some(&PropValue::U64(1000000)));
        assert_eq!(get(&p, "MemoryMin"), Some(&PropValue::U64(INFINITY)));
        assert_eq!(
            get(&p, "CPUQuotaPerSecUSec"),
            Some(&PropValue::U64(400_000))
        );
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&PropValue::U64(50_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&PropValue::U64(INFINITY)));
        assert_eq!(p.len(), 5);
        // Not on v1, where unified keys do not exist.
        assert!(resource_properties(&r, &V1).unwrap().is_empty());
    }
}
