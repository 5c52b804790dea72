//! `linux.personality`: the execution domain, set with personality(2) in the container process
//! before it execs (the personality survives execve).

use nix::errno::Errno;
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

/// From <linux/personality.h>.
const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

#[derive(Debug, thiserror::Error)]
pub enum PersonalityError {
    /// runtime-spec 1.2 defines no flags, so any flag is a configuration error.
    #[error("linux.personality: flag {0:?} is not supported (runtime-spec 1.2 defines no flags)")]
    Flag(String),
    #[error("personality({0:#x}): {1}")]
    Sys(libc::c_ulong, Errno),
}

/// The personality(2) argument for `p`, or why it cannot be set.
pub fn persona(p: &LinuxPersonality) -> Result<libc::c_ulong, PersonalityError> {
    if let Some(f) = p.flags().iter().flatten().next() {
        return Err(PersonalityError::Flag(f.clone()));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    })
}

/// Set the calling process's personality.
pub fn apply(p: &LinuxPersonality) -> Result<(), PersonalityError> {
    let persona = persona(p)?;
    // SAFETY: personality(2) takes a plain integer and only changes this process's domain.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(PersonalityError::Sys(persona, Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> LinuxPersonality {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn domains_map_to_their_persona_values() {
        assert_eq!(
            persona(&parse(serde_json::json!({"domain": "LINUX"}))).unwrap(),
            0
        );
        assert_eq!(
            persona(&parse(
                serde_json::json!({"domain": "LINUX32", "flags": []})
            ))
            .unwrap(),
            8
        );
    }

    #[test]
    fn flags_and_unknown_domains_are_refused() {
        let e = persona(&parse(
            serde_json::json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("ADDR_NO_RANDOMIZE"), "{e}");
        let bad: Result<LinuxPersonality, _> =
            serde_json::from_value(serde_json::json!({"domain": "LINUX64"}));
        assert!(bad.is_err());
    }

    #[test]
    fn linux32_changes_uname_in_a_child() {
        use crate::test_util::{ChildResult, fork_child};
        let p = parse(serde_json::json!({"domain": "LINUX32"}));
        // In a child so the test process keeps its own personality.
        let r = fork_child(|| {
            apply(&p).map_err(|e| e.to_string())?;
            // SAFETY: uname fills the zeroed struct we own.
            let mut u: libc::utsname = unsafe { std::mem::zeroed() };
            if unsafe { libc::uname(&mut u) } != 0 {
                return Err("uname failed".into());
            }
            // SAFETY: the kernel NUL-terminates utsname fields.
            let m = unsafe { std::ffi::CStr::from_ptr(u.machine.as_ptr()) };
            Ok(m.to_string_lossy().into_owned())
        });
        let ChildResult::Ok(machine) = r else {
            panic!("{r:?}");
        };
        if std::env::consts::ARCH == "x86_64" {
            assert!(
                machine.starts_with('i') && machine.ends_with("86"),
                "{machine}"
            );
        }
    }
}
