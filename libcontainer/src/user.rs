//! Switch the container init to the OCI `process.user`, plus /etc/passwd and
//! /etc/group lookups inside a container rootfs for the CRI side.
//!
//! [`apply`] runs in the single-threaded container init: setgroups → setgid →
//! setuid → umask (group changes first, they need CAP_SETGID which the uid
//! change may remove). nix calls glibc's setres[ug]id, which applies to every
//! thread of the process; after fork there is only one.
//! Wrap it in `capabilities::set_keep_caps(true/false)` — see
//! `capabilities.rs` for the full order.
//!
//! Lookups open files with openat2(RESOLVE_IN_ROOT) relative to the rootfs, so
//! an absolute or `..` symlink such as `/etc/passwd -> /host/etc/passwd` is
//! resolved inside the rootfs and never reaches the host's files.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::{Mode, SFlag, fstat, umask};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::User;

/// Upper bound for /etc/passwd and /etc/group (a hostile image could ship a
/// huge file).
const MAX_DB_FILE: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("setgroups is denied in this user namespace; cannot set additional gids {0:?}")]
    SetgroupsDenied(Vec<u32>),
    #[error("{op}({arg}): {source}")]
    Syscall {
        op: &'static str,
        arg: String,
        #[source]
        source: Errno,
    },
    #[error("user {name:?} not found in {rootfs}/etc/passwd")]
    UserNotFound { name: String, rootfs: PathBuf },
    #[error("group {name:?} not found in {rootfs}/etc/group")]
    GroupNotFound { name: String, rootfs: PathBuf },
    #[error("reading {file} in rootfs {rootfs}: {reason}")]
    Read {
        rootfs: PathBuf,
        file: &'static str,
        reason: String,
    },
}

fn sys(op: &'static str, arg: impl ToString) -> impl FnOnce(Errno) -> UserError {
    move |source| UserError::Syscall {
        op,
        arg: arg.to_string(),
        source,
    }
}

/// Whether /proc/self/setgroups says "deny" (user namespace set up without
/// setgroups, e.g. rootless).
pub fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false)
}

/// Switch credentials to `user`.
pub fn apply(user: &User) -> Result<(), UserError> {
    apply_with(user, setgroups_denied())
}

/// [`apply`] with [`setgroups_denied`] read beforehand (the container init reads it before it
/// waits for `start`).
pub fn apply_with(user: &User, setgroups_denied: bool) -> Result<(), UserError> {
    let (uid, gid) = (user.uid(), user.gid());
    // Exactly additionalGids (deduplicated), as runc does: the caller (the CRI side) decides
    // whether the primary gid belongs among them.
    let mut groups: Vec<u32> = Vec::new();
    for g in user.additional_gids().iter().flatten() {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }

    if setgroups_denied {
        let extra: Vec<u32> = groups.iter().copied().filter(|g| *g != gid).collect();
        if !extra.is_empty() {
            return Err(UserError::SetgroupsDenied(extra));
        }
        tracing::debug!("setgroups denied in this user namespace; supplementary groups left as is");
    } else {
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&gids).map_err(sys("setgroups", format!("{groups:?}")))?;
    }
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).map_err(sys("setresgid", gid))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(sys("setresuid", uid))?;
    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask & 0o777));
    }
    Ok(())
}

/// One /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Lines of a colon-separated database, skipping blanks, comments and NIS
/// compat entries ('+'/'-').
fn records(content: &str) -> impl Iterator<Item = Vec<&str>> {
    content
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect())
}

/// Parse /etc/passwd content; malformed lines are skipped (as libc does).
pub fn parse_passwd(content: &str) -> Vec<PasswdEntry> {
    records(content)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
                shell: f.get(6).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// Parse /etc/group content; malformed lines are skipped.
pub fn parse_group(content: &str) -> Vec<GroupEntry> {
    records(content)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Read `rel` (e.g. "etc/passwd") inside `rootfs`, resolving every symlink
/// as if `rootfs` were `/`. Ok(None) if it does not exist.
fn read_in_root(rootfs: &Path, rel: &'static str) -> Result<Option<String>, UserError> {
    let fail = |reason: String| UserError::Read {
        rootfs: rootfs.to_path_buf(),
        file: rel,
        reason,
    };
    let root: OwnedFd = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(format!("open rootfs: {e}")))?;
    // O_NONBLOCK: a FIFO planted at etc/passwd must not block us.
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(&root, rel, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ENOSYS) => return Err(fail("openat2 not supported (needs Linux 5.6+)".into())),
        Err(e) => return Err(fail(format!("openat2: {e}"))),
    };
    let st = fstat(&fd).map_err(|e| fail(format!("fstat: {e}")))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(fail("not a regular file".into()));
    }
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_DB_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(format!("read: {e}")))?;
    if buf.len() as u64 > MAX_DB_FILE {
        return Err(fail(format!("larger than {MAX_DB_FILE} bytes")));
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>, UserError> {
    Ok(read_in_root(rootfs, "etc/passwd")?
        .map(|c| parse_passwd(&c))
        .unwrap_or_default())
}

fn group(rootfs: &Path) -> Result<Vec<GroupEntry>, UserError> {
    Ok(read_in_root(rootfs, "etc/group")?
        .map(|c| parse_group(&c))
        .unwrap_or_default())
}

/// (uid, gid, home) of user `name` in the container's /etc/passwd.
pub fn lookup_user(rootfs: &Path, name: &str) -> Result<(u32, u32, String), UserError> {
    passwd(rootfs)?
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| (e.uid, e.gid, e.home))
        .ok_or_else(|| UserError::UserNotFound {
            name: name.to_string(),
            rootfs: rootfs.to_path_buf(),
        })
}

/// The passwd entry for `uid`, if any (CRI `runAsUser` → user name for
/// [`supplementary_groups`]).
pub fn lookup_user_by_uid(rootfs: &Path, uid: u32) -> Result<Option<PasswdEntry>, UserError> {
    Ok(passwd(rootfs)?.into_iter().find(|e| e.uid == uid))
}

/// gid of group `name` in the container's /etc/group.
pub fn lookup_group(rootfs: &Path, name: &str) -> Result<u32, UserError> {
    group(rootfs)?
        .into_iter()
        .find(|g| g.name == name)
        .map(|g| g.gid)
        .ok_or_else(|| UserError::GroupNotFound {
            name: name.to_string(),
            rootfs: rootfs.to_path_buf(),
        })
}

/// gids of the groups listing `user_name` as a member in the container's
/// /etc/group (order of the file, deduplicated). A missing or unreadable file
/// yields no groups: supplementary groups only add privileges, so the safe
/// fallback is none (logged at debug level).
pub fn supplementary_groups(rootfs: &Path, user_name: &str) -> Vec<u32> {
    let groups = match group(rootfs) {
        Ok(g) => g,
        Err(e) => {
            tracing::debug!(error = %e, "no supplementary groups");
            return Vec::new();
        }
    };
    let mut gids = Vec::new();
    for g in groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == user_name))
    {
        if !gids.contains(&g.gid) {
            gids.push(g.gid);
        }
    }
    gids
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ChildResult, fork_child, require_root};
    use super::*;
    use std::fs;

    const PASSWD: &str = "\
# comment
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken:x:notanumber:1::/:/bin/sh
short:x:7:8
+nis
app:x:1000:1000:App User,,,:/home/app:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
adm:x:4:syslog,app
app:x:1000:
video:x:44:app, other
bad:x:nope:app
audio:x:29
adm2:x:4:app
";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        fs::write(dir.path().join("etc/passwd"), PASSWD).expect("write");
        fs::write(dir.path().join("etc/group"), GROUP).expect("write");
        dir
    }

    #[test]
    fn parses_fixtures() {
        let r = rootfs();
        assert_eq!(
            lookup_user(r.path(), "app").expect("app"),
            (1000, 1000, "/home/app".to_string())
        );
        assert_eq!(
            lookup_user(r.path(), "short").expect("short"),
            (7, 8, String::new())
        );
        assert!(matches!(
            lookup_user(r.path(), "broken"),
            Err(UserError::UserNotFound { .. })
        ));
        assert!(matches!(
            lookup_user(r.path(), "+nis"),
            Err(UserError::UserNotFound { .. })
        ));
        assert_eq!(lookup_group(r.path(), "video").expect("video"), 44);
        assert_eq!(lookup_group(r.path(), "audio").expect("audio"), 29);
        assert!(matches!(
            lookup_group(r.path(), "nogroup"),
            Err(UserError::GroupNotFound { .. })
        ));
        assert_eq!(supplementary_groups(r.path(), "app"), vec![4, 44]);
        assert_eq!(supplementary_groups(r.path(), "other"), vec![44]);
        assert!(supplementary_groups(r.path(), "root").is_empty());
        assert_eq!(
            lookup_user_by_uid(r.path(), 1).expect("ok").map(|e| e.name),
            Some("daemon".to_string())
        );
    }

    #[test]
    fn missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            lookup_user(dir.path(), "root"),
            Err(UserError::UserNotFound { .. })
        ));
        assert!(supplementary_groups(dir.path(), "root").is_empty());
    }

    #[test]
    fn symlinks_cannot_escape_the_rootfs() {
        let top = tempfile::tempdir().expect("tempdir");
        let outside = top.path().join("host-passwd");
        fs::write(&outside, "evil:x:0:0::/root:/bin/sh\n").expect("write");
        let root = top.path().join("rootfs");
        fs::create_dir_all(root.join("etc")).expect("mkdir");

        // Absolute symlink: resolved under the rootfs, where it does not exist.
        std::os::unix::fs::symlink(&outside, root.join("etc/passwd")).expect("symlink");
        assert!(matches!(
            lookup_user(&root, "evil"),
            Err(UserError::UserNotFound { .. })
        ));
        // The same absolute path *inside* the rootfs is what gets read.
        let inside = root.join(outside.strip_prefix("/").expect("absolute"));
        fs::create_dir_all(inside.parent().expect("parent")).expect("mkdir");
        fs::write(&inside, "good:x:5:5::/:/bin/sh\n").expect("write");
        assert_eq!(lookup_user(&root, "good").expect("good").0, 5);

        // `..` symlinks are clamped at the rootfs too.
        std::os::unix::fs::symlink("../../../../../../../host-group", root.join("etc/group"))
            .expect("symlink");
        fs::write(top.path().join("host-group"), "g:x:666:\n").expect("write");
        assert!(matches!(
            lookup_group(&root, "g"),
            Err(UserError::GroupNotFound { .. })
        ));
    }

    #[test]
    fn non_regular_file_is_refused() {
        let r = rootfs();
        fs::remove_file(r.path().join("etc/passwd")).expect("rm");
        nix::unistd::mkfifo(
            &r.path().join("etc/passwd"),
            Mode::from_bits_truncate(0o600),
        )
        .expect("mkfifo");
        let e = lookup_user(r.path(), "root").expect_err("fifo");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    fn status_line(status: &str, key: &str) -> String {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    #[test]
    fn apply_switches_ids_groups_and_umask() {
        if !require_root("apply_switches_ids_groups_and_umask") {
            return;
        }
        let user: User = serde_json::from_str(
            r#"{"uid":1000,"gid":1001,"additionalGids":[2000,1001,3000],"umask":23}"#,
        )
        .expect("user");
        let res = fork_child(move || {
            apply(&user).map_err(|e| e.to_string())?;
            let s = fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
            Ok(["Uid:", "Gid:", "Groups:", "Umask:"]
                .iter()
                .map(|k| status_line(&s, k))
                .collect::<Vec<_>>()
                .join("|"))
        });
        assert_eq!(
            res,
            ChildResult::Ok(
                "Uid: 1000 1000 1000 1000|Gid: 1001 1001 1001 1001|Groups: 1001 2000 3000|Umask: 0027"
                    .into()
            )
        );
    }

    /// In a user namespace with setgroups denied: no additional gids → skip;
    /// additional gids → clear error. A grandchild unshares the user
    /// namespace and the child (still privileged in the parent namespace)
    /// writes its maps, as a runtime would.
    fn in_userns_with_setgroups_denied(user_json: &'static str) -> ChildResult {
        use nix::unistd::{ForkResult, fork, pipe2, read, write};
        fork_child(move || {
            let (r1, w1) = pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
            let (r2, w2) = pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
            // SAFETY: the child is single-threaded (we are a forked child).
            match unsafe { fork() }.map_err(|e| e.to_string())? {
                ForkResult::Child => {
                    let code = (|| {
                        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_err() {
                            return 2;
                        }
                        let _ = write(&w1, b"u");
                        let mut b = [0u8; 1];
                        if read(&r2, &mut b) != Ok(1) {
                            return 3;
                        }
                        let Ok(user) = serde_json::from_str::<User>(user_json) else {
                            return 4;
                        };
                        match apply(&user) {
                            Ok(()) if nix::unistd::getuid().as_raw() == 1000 => 0,
                            Ok(()) => 5,
                            Err(UserError::SetgroupsDenied(_)) => 10,
                            Err(_) => 6,
                        }
                    })();
                    // SAFETY: leave the grandchild without unwinding.
                    unsafe { libc::_exit(code) }
                }
                ForkResult::Parent { child } => {
                    let mut b = [0u8; 1];
                    read(&r1, &mut b).map_err(|e| e.to_string())?;
                    let proc = format!("/proc/{child}");
                    let setup = fs::write(format!("{proc}/setgroups"), "deny")
                        .and_then(|_| fs::write(format!("{proc}/uid_map"), "0 0 65536"))
                        .and_then(|_| fs::write(format!("{proc}/gid_map"), "0 0 65536"));
                    write(&w2, b"g").map_err(|e| e.to_string())?;
                    let status = nix::sys::wait::waitpid(child, None).map_err(|e| e.to_string())?;
                    setup.map_err(|e| format!("maps: {e}"))?;
                    match status {
                        nix::sys::wait::WaitStatus::Exited(_, 2) => Err("unshare failed".into()),
                        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok("applied".into()),
                        nix::sys::wait::WaitStatus::Exited(_, 10) => Ok("denied".into()),
                        other => Err(format!("grandchild: {other:?}")),
                    }
                }
            }
        })
    }

    #[test]
    fn setgroups_denied_in_userns() {
        if !require_root("setgroups_denied_in_userns") {
            return;
        }
        match in_userns_with_setgroups_denied(r#"{"uid":1000,"gid":1000}"#) {
            ChildResult::Err(e) if e.starts_with("unshare") => {
                eprintln!("skipped: user namespaces unavailable ({e})");
                return;
            }
            other => assert_eq!(other, ChildResult::Ok("applied".into())),
        }
        assert_eq!(
            in_userns_with_setgroups_denied(
                r#"{"uid":1000,"gid":1000,"additionalGids":[1000,2000]}"#
            ),
            ChildResult::Ok("denied".into())
        );
    }
}
