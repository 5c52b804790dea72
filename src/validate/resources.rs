//! Linux resources (a container's, a pod's, an update's): the kernel's ranges, checked before a
//! cgroup is written so a bad value is INVALID_ARGUMENT and not a failed write half-way.

use super::{Invalid, invalid, quote};
use crate::api;

/// cpu.cfs_period_us: the kernel takes 1 ms to 1 s.
const CPU_PERIOD_US: std::ops::RangeInclusive<i64> = 1_000..=1_000_000;
/// cpu.cfs_quota_us: at least 1 ms, at most the kernel's `max_cfs_runtime` (2^44 - 1 µs).
const CPU_QUOTA_US: std::ops::RangeInclusive<i64> = 1_000..=(1 << 44) - 1;
/// cpu.shares of cgroup v1 (v2's weight is mapped from it).
const CPU_SHARES: std::ops::RangeInclusive<i64> = 2..=262_144;
/// The smallest memory limit a container can start under (runc's and docker's 6 MiB).
pub const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;
/// The kernel's NR_CPUS upper bound, and that of NUMA nodes, for cpuset lists.
const MAX_CPU: u32 = 8191;
/// A cpuset list's text.
const CPUSET_BYTES: usize = 4096;

/// One `LinuxContainerResources` (`field` names it in the message).
pub fn container_resources(field: &str, r: &api::LinuxContainerResources) -> Result<(), Invalid> {
    checked(field, r, Limits::Whole)
}

/// A pod's overhead: an amount added to the pod's resources, not a limit of its own, so only
/// signs and upper bounds apply (a 1 MiB or 5-millicore overhead is fine).
pub fn overhead(field: &str, r: &api::LinuxContainerResources) -> Result<(), Invalid> {
    checked(field, r, Limits::Overhead)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Limits {
    Whole,
    Overhead,
}

fn checked(field: &str, r: &api::LinuxContainerResources, limits: Limits) -> Result<(), Invalid> {
    if limits == Limits::Overhead {
        return overhead_checked(field, r);
    }
    let f = |name: &str| format!("{field}.{name}");
    if r.cpu_period != 0 && !CPU_PERIOD_US.contains(&r.cpu_period) {
        return Err(invalid(
            &f("cpu_period"),
            format!("{} µs is not 0 or in 1000-1000000", r.cpu_period),
        ));
    }
    if !matches!(r.cpu_quota, 0 | -1) && !CPU_QUOTA_US.contains(&r.cpu_quota) {
        return Err(invalid(
            &f("cpu_quota"),
            format!(
                "{} µs is not 0, -1 or in {}-{}",
                r.cpu_quota,
                CPU_QUOTA_US.start(),
                CPU_QUOTA_US.end()
            ),
        ));
    }
    if r.cpu_shares != 0 && !CPU_SHARES.contains(&r.cpu_shares) {
        return Err(invalid(
            &f("cpu_shares"),
            format!("{} is not 0 or in 2-262144", r.cpu_shares),
        ));
    }
    if r.memory_limit_in_bytes != 0 && r.memory_limit_in_bytes < MIN_MEMORY_BYTES {
        return Err(invalid(
            &f("memory_limit_in_bytes"),
            format!(
                "{} is not 0 (no limit) or at least {MIN_MEMORY_BYTES} (6 MiB)",
                r.memory_limit_in_bytes
            ),
        ));
    }
    if r.memory_swap_limit_in_bytes < 0 {
        return Err(invalid(
            &f("memory_swap_limit_in_bytes"),
            format!("{} is negative", r.memory_swap_limit_in_bytes),
        ));
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(invalid(
            &f("oom_score_adj"),
            format!("{} is not in -1000-1000", r.oom_score_adj),
        ));
    }
    cpuset_list(&f("cpuset_cpus"), &r.cpuset_cpus)?;
    cpuset_list(&f("cpuset_mems"), &r.cpuset_mems)?;
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        let field = f(&format!("hugepage_limits[{i}]"));
        if !page_size(&h.page_size) {
            return Err(invalid(
                &field,
                format!(
                    "page_size {} is not a size like 2MB or 1GB",
                    quote(&h.page_size)
                ),
            ));
        }
        if i64::try_from(h.limit).is_err() {
            return Err(invalid(&field, format!("limit {} is too large", h.limit)));
        }
    }
    for (key, value) in &r.unified {
        let good_key = !key.is_empty()
            && key.len() <= 255
            && key.contains('.')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if !good_key {
            return Err(invalid(
                &f("unified"),
                format!("{} is not a cgroup v2 file name", quote(key)),
            ));
        }
        if value.len() > 4096 || value.contains('\0') {
            return Err(invalid(
                &f("unified"),
                format!("the value of {} is not a cgroup value", quote(key)),
            ));
        }
    }
    Ok(())
}

fn overhead_checked(field: &str, r: &api::LinuxContainerResources) -> Result<(), Invalid> {
    let f = |name: &str| format!("{field}.{name}");
    for (name, value, max) in [
        ("cpu_period", r.cpu_period, *CPU_PERIOD_US.end()),
        ("cpu_quota", r.cpu_quota, *CPU_QUOTA_US.end()),
        ("cpu_shares", r.cpu_shares, *CPU_SHARES.end()),
        ("memory_limit_in_bytes", r.memory_limit_in_bytes, i64::MAX),
        (
            "memory_swap_limit_in_bytes",
            r.memory_swap_limit_in_bytes,
            i64::MAX,
        ),
    ] {
        if !(0..=max).contains(&value) {
            return Err(invalid(&f(name), format!("{value} is not in 0-{max}")));
        }
    }
    Ok(())
}

/// A cpuset list as the kernel reads it: `0-3,5,8-9`, ascending ranges, ids up to 8191; empty
/// means "all".
fn cpuset_list(field: &str, list: &str) -> Result<(), Invalid> {
    if list.is_empty() {
        return Ok(());
    }
    let bad = || {
        invalid(
            field,
            format!("{} is not a cpu list like 0-3,5", quote(list)),
        )
    };
    if list.len() > CPUSET_BYTES {
        return Err(bad());
    }
    let id = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|n| *n <= MAX_CPU)
    };
    for item in list.split(',') {
        let (low, high) = match item.split_once('-') {
            Some((a, b)) => (id(a).ok_or_else(bad)?, id(b).ok_or_else(bad)?),
            None => {
                let n = id(item).ok_or_else(bad)?;
                (n, n)
            }
        };
        if low > high {
            return Err(bad());
        }
    }
    Ok(())
}

/// A huge page size as the kubelet and the hugetlb controller name it: digits and a unit
/// (`64KB`, `2MB`, `1GB`).
fn page_size(size: &str) -> bool {
    let Some(digits) = ["KB", "MB", "GB", "TB"]
        .iter()
        .find_map(|unit| size.strip_suffix(unit))
    else {
        return false;
    };
    !digits.is_empty()
        && digits.len() <= 6
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(r: api::LinuxContainerResources) -> Result<(), Invalid> {
        container_resources("r", &r)
    }

    fn res() -> api::LinuxContainerResources {
        api::LinuxContainerResources::default()
    }

    #[test]
    fn what_a_kubelet_sends_passes() {
        assert_eq!(check(res()), Ok(()));
        // Guaranteed pod: period with quota, shares, a limit, oom_score_adj -997, huge pages off.
        let r = api::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 128 << 20,
            oom_score_adj: -997,
            cpuset_cpus: "0-3,5".into(),
            cpuset_mems: "0".into(),
            hugepage_limits: vec![
                api::HugepageLimit {
                    page_size: "2MB".into(),
                    limit: 0,
                },
                api::HugepageLimit {
                    page_size: "1GB".into(),
                    limit: 0,
                },
            ],
            unified: [("memory.high".to_string(), "max".to_string())].into(),
            ..res()
        };
        assert_eq!(check(r), Ok(()));
        // Best effort: shares 2, oom_score_adj 1000, no limits; unlimited quota.
        let r = api::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: -1,
            cpu_shares: 2,
            oom_score_adj: 1000,
            ..res()
        };
        assert_eq!(check(r), Ok(()));
        // The smallest quota the kubelet sends (MinQuotaPeriod).
        let r = api::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 1000,
            ..res()
        };
        assert_eq!(check(r), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let bad: Vec<(&str, api::LinuxContainerResources)> = vec![
            (
                "cpu_period",
                api::LinuxContainerResources {
                    cpu_period: 999,
                    ..res()
                },
            ),
            (
                "cpu_period",
                api::LinuxContainerResources {
                    cpu_period: i64::MAX,
                    ..res()
                },
            ),
            (
                "cpu_period",
                api::LinuxContainerResources {
                    cpu_period: -5,
                    ..res()
                },
            ),
            (
                "cpu_quota",
                api::LinuxContainerResources {
                    cpu_quota: 999,
                    ..res()
                },
            ),
            (
                "cpu_quota",
                api::LinuxContainerResources {
                    cpu_quota: -2,
                    ..res()
                },
            ),
            (
                "cpu_quota",
                api::LinuxContainerResources {
                    cpu_quota: 1 << 44,
                    ..res()
                },
            ),
            (
                "cpu_shares",
                api::LinuxContainerResources {
                    cpu_shares: 1,
                    ..res()
                },
            ),
            (
                "cpu_shares",
                api::LinuxContainerResources {
                    cpu_shares: 262_145,
                    ..res()
                },
            ),
            (
                "memory_limit_in_bytes",
                api::LinuxContainerResources {
                    memory_limit_in_bytes: 1,
                    ..res()
                },
            ),
            (
                "memory_limit_in_bytes",
                api::LinuxContainerResources {
                    memory_limit_in_bytes: -1,
                    ..res()
                },
            ),
            (
                "memory_swap_limit_in_bytes",
                api::LinuxContainerResources {
                    memory_swap_limit_in_bytes: -1,
                    ..res()
                },
            ),
            (
                "oom_score_adj",
                api::LinuxContainerResources {
                    oom_score_adj: 1001,
                    ..res()
                },
            ),
            (
                "cpuset_cpus",
                api::LinuxContainerResources {
                    cpuset_cpus: "bogus".into(),
                    ..res()
                },
            ),
            (
                "cpuset_cpus",
                api::LinuxContainerResources {
                    cpuset_cpus: "3-1".into(),
                    ..res()
                },
            ),
            (
                "cpuset_cpus",
                api::LinuxContainerResources {
                    cpuset_cpus: "0,,1".into(),
                    ..res()
                },
            ),
            (
                "cpuset_cpus",
                api::LinuxContainerResources {
                    cpuset_cpus: "99999".into(),
                    ..res()
                },
            ),
            (
                "cpuset_mems",
                api::LinuxContainerResources {
                    cpuset_mems: "0-".into(),
                    ..res()
                },
            ),
            (
                "cpuset_mems",
                api::LinuxContainerResources {
                    cpuset_mems: "0\n".into(),
                    ..res()
                },
            ),
            (
                "hugepage_limits[0]",
                api::LinuxContainerResources {
                    hugepage_limits: vec![api::HugepageLimit {
                        page_size: "2M/../x".into(),
                        limit: 1,
                    }],
                    ..res()
                },
            ),
            (
                "hugepage_limits[0]",
                api::LinuxContainerResources {
                    hugepage_limits: vec![api::HugepageLimit {
                        page_size: "2MB".into(),
                        limit: u64::MAX,
                    }],
                    ..res()
                },
            ),
            (
                "unified",
                api::LinuxContainerResources {
                    unified: [("../memory.max".to_string(), "1".to_string())].into(),
                    ..res()
                },
            ),
        ];
        for (field, r) in bad {
            let m = check(r).unwrap_err().0;
            assert!(m.starts_with(&format!("r.{field}")), "{field}: {m}");
            assert!(m.len() < 300, "{field}: {m}");
        }
        let huge = api::LinuxContainerResources {
            cpuset_cpus: "1,".repeat(1 << 19),
            ..res()
        };
        assert!(check(huge).unwrap_err().0.len() < 300);
    }

    #[test]
    fn a_small_overhead_is_fine_a_negative_one_is_not() {
        let small = api::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 500,
            cpu_shares: 1,
            memory_limit_in_bytes: 1 << 20,
            ..res()
        };
        assert_eq!(overhead("o", &small), Ok(()));
        let negative = api::LinuxContainerResources {
            memory_limit_in_bytes: -1,
            ..res()
        };
        assert!(
            overhead("o", &negative)
                .unwrap_err()
                .0
                .starts_with("o.memory_limit_in_bytes")
        );
        let huge = api::LinuxContainerResources {
            cpu_period: 1 << 40,
            ..res()
        };
        assert!(overhead("o", &huge).is_err());
    }

    #[test]
    fn page_sizes() {
        for good in ["64KB", "2MB", "1GB", "16GB"] {
            assert!(page_size(good), "{good}");
        }
        for bad in ["", "MB", "2M", "2mb", "02MB", "-2MB", "2 MB", "1234567MB"] {
            assert!(!page_size(bad), "{bad}");
        }
    }
}
