//! `crius oci features`: what this runtime supports, as the runtime-spec features document.

use serde_json::{Value, json};

use super::lsm;

/// Whether seccomp filters are compiled and installed (true once the security module's
/// `seccomp` is wired in).
pub const SECCOMP_ENABLED: bool = true;

const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const MOUNT_OPTIONS: [&str; 66] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rw",
    "silent",
    "strictatime",
    "suid",
    "sync",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnoatime",
    "ratime",
    "rrelatime",
    "rnorelatime",
    "rstrictatime",
    "rnostrictatime",
    "rnodiratime",
    "rdiratime",
    "nosymfollow",
    "symfollow",
    "rnosymfollow",
    "rsymfollow",
    "idmap",
    "ridmap",
    "tmpcopyup",
    "mode",
    "size",
    "uid",
    "gid",
];

pub fn features() -> Value {
    features_on(&lsm::Host::default())
}

/// The document for a host whose LSMs `host` describes.
pub fn features_on(host: &lsm::Host) -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS.to_vec(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": CAPABILITIES.to_vec(),
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": SECCOMP_ENABLED,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]
            },
            "apparmor": { "enabled": host.apparmor_enabled() },
            "selinux": { "enabled": host.selinux_enabled() },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": { "io.crius.oci.version": env!("CARGO_PKG_VERSION") }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn features_parse_as_runtime_spec_features() {
        let v = super::features();
        let f: oci_spec::runtime::Features = serde_json::from_value(v).unwrap();
        assert_eq!(f.oci_version_max(), "1.2.0");
        let linux = f.linux().clone().unwrap();
        let idmap = linux
            .mount_extensions()
            .clone()
            .unwrap()
            .idmap()
            .clone()
            .unwrap();
        assert_eq!(*idmap.enabled(), Some(true));
    }

    #[test]
    fn every_listed_mount_option_is_understood() {
        for o in super::MOUNT_OPTIONS {
            // Filesystem data (mode=, size=, …) is passed through, everything else parsed.
            let o = if ["mode", "size", "uid", "gid"].contains(&o) {
                continue;
            } else {
                o.to_string()
            };
            let parsed = crate::rootfs::options::parse(std::slice::from_ref(&o)).unwrap();
            assert!(parsed.data.is_empty(), "{o} is treated as filesystem data");
        }
    }

    #[test]
    fn lsm_flags_follow_the_host() {
        let d = tempfile::tempdir().unwrap();
        let off = super::features_on(&super::lsm::Host::at(d.path()));
        assert_eq!(off["linux"]["apparmor"]["enabled"], false);
        assert_eq!(off["linux"]["selinux"]["enabled"], false);
        let aa = d.path().join("sys/module/apparmor/parameters");
        std::fs::create_dir_all(&aa).unwrap();
        std::fs::write(aa.join("enabled"), "Y\n").unwrap();
        std::fs::create_dir_all(d.path().join("sys/fs/selinux")).unwrap();
        std::fs::write(d.path().join("sys/fs/selinux/enforce"), "0").unwrap();
        let on = super::features_on(&super::lsm::Host::at(d.path()));
        assert_eq!(on["linux"]["apparmor"]["enabled"], true);
        assert_eq!(on["linux"]["selinux"]["enabled"], true);
        assert!(
            on["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .contains(&"time".into())
        );
    }
}
