//! fstab-style mount options → mount(2) flags, propagation, filesystem data (runc's
//! `parseMountOptions`), the recursive attributes applied with mount_setattr(AT_RECURSIVE), and
//! the runtime-only options (`idmap`, `ridmap`, `tmpcopyup`).

use nix::mount::MsFlags;

use crate::error::Result;
use crate::mount_api::{
    MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME, MountAttr,
};

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// Which id-mapping option a mount carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    /// `idmap`: only the mount itself is id-mapped.
    Top,
    /// `ridmap`: every mount of the (rbind) tree is id-mapped.
    Recursive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`size=64m,mode=755`), comma-joined.
    pub data: Vec<String>,
    /// `rro`, `rnosuid`, `rnoatime`, …: attributes set/cleared on the whole tree via
    /// mount_setattr(AT_RECURSIVE) after the mount.
    pub recursive: MountAttr,
    pub idmap: Option<Idmap>,
    /// `tmpcopyup`: copy what the tmpfs covers into it.
    pub tmpcopyup: bool,
}

impl MountOptions {
    pub fn data_string(&self) -> Option<String> {
        if self.data.is_empty() {
            None
        } else {
            Some(self.data.join(","))
        }
    }
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    /// Whether any recursive attribute was asked for.
    pub fn has_recursive(&self) -> bool {
        self.recursive.attr_set != 0 || self.recursive.attr_clr != 0
    }
}

/// What a recursive option does to the mount_setattr request.
enum Rec {
    Set(u64),
    Clear(u64),
    /// The atime setting is an enum: the kernel wants all of MOUNT_ATTR__ATIME cleared and the
    /// new value set.
    Atime(u64),
}

fn recursive_option(opt: &str) -> Option<Rec> {
    Some(match opt {
        "rro" => Rec::Set(MOUNT_ATTR_RDONLY),
        "rrw" => Rec::Clear(MOUNT_ATTR_RDONLY),
        "rnosuid" => Rec::Set(MOUNT_ATTR_NOSUID),
        "rsuid" => Rec::Clear(MOUNT_ATTR_NOSUID),
        "rnodev" => Rec::Set(MOUNT_ATTR_NODEV),
        "rdev" => Rec::Clear(MOUNT_ATTR_NODEV),
        "rnoexec" => Rec::Set(MOUNT_ATTR_NOEXEC),
        "rexec" => Rec::Clear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Rec::Set(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => Rec::Clear(MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => Rec::Set(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => Rec::Clear(MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => Rec::Atime(MOUNT_ATTR_NOATIME),
        // "norelatime" means full atime updates; the negations of noatime and strictatime
        // fall back to the kernel default, relatime (as mount(8) does).
        "rstrictatime" | "rnorelatime" => Rec::Atime(MOUNT_ATTR_STRICTATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => Rec::Atime(MOUNT_ATTR_RELATIME),
        _ => return None,
    })
}

fn apply_recursive(attr: &mut MountAttr, r: Rec) {
    match r {
        Rec::Set(b) => {
            attr.attr_set |= b;
            attr.attr_clr &= !b;
        }
        Rec::Clear(b) => {
            attr.attr_clr |= b;
            attr.attr_set &= !b;
        }
        Rec::Atime(v) => {
            attr.attr_clr |= MOUNT_ATTR__ATIME;
            attr.attr_set = (attr.attr_set & !MOUNT_ATTR__ATIME) | v;
        }
    }
}

pub fn parse(options: &[String]) -> Result<MountOptions> {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        recursive: MountAttr::default(),
        idmap: None,
        tmpcopyup: false,
    };
    for opt in options {
        if let Some(r) = recursive_option(opt) {
            apply_recursive(&mut out.recursive, r);
            continue;
        }
        let (clear, flag) = match opt.as_str() {
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "atime" => (true, MsFlags::MS_NOATIME),
            "bind" => (false, MsFlags::MS_BIND),
            "defaults" => (false, MsFlags::empty()),
            "dev" => (true, MsFlags::MS_NODEV),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "iversion" => (false, MsFlags::MS_I_VERSION),
            "lazytime" => (false, MsFlags::MS_LAZYTIME),
            "loud" => (true, MsFlags::MS_SILENT),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "nodev" => (false, MsFlags::MS_NODEV),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "noiversion" => (true, MsFlags::MS_I_VERSION),
            "nolazytime" => (true, MsFlags::MS_LAZYTIME),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "remount" => (false, MsFlags::MS_REMOUNT),
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "silent" => (false, MsFlags::MS_SILENT),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "suid" => (true, MsFlags::MS_NOSUID),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                out.propagation
                    .push(propagation(opt).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            "nosymfollow" => (false, MS_NOSYMFOLLOW),
            "symfollow" => (true, MS_NOSYMFOLLOW),
            // ridmap wins over idmap whatever the order: it only adds the submounts.
            "idmap" => {
                out.idmap.get_or_insert(Idmap::Top);
                continue;
            }
            "ridmap" => {
                out.idmap = Some(Idmap::Recursive);
                continue;
            }
            "tmpcopyup" => {
                out.tmpcopyup = true;
                continue;
            }
            _ => {
                out.data.push(opt.clone());
                continue;
            }
        };
        if clear {
            out.flags.remove(flag);
        } else {
            out.flags.insert(flag);
        }
    }
    Ok(out)
}

/// `rootfsPropagation` / propagation option → flags.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_clear_earlier_ones() {
        assert_eq!(p(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(
            p(&["rbind", "ro"]).flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(p(&["rro"]).recursive.attr_set, MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn recursive_options_set_and_clear_mount_attributes() {
        let o = p(&[
            "rro",
            "rnosuid",
            "rnoexec",
            "rnodev",
            "rdev",
            "rnosymfollow",
        ]);
        assert_eq!(
            o.recursive.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW
        );
        assert_eq!(o.recursive.attr_clr, MOUNT_ATTR_NODEV);
        assert_eq!(o.flags, MsFlags::empty());
        assert!(o.data.is_empty());
        // A later option undoes an earlier one.
        let o = p(&["rro", "rrw", "rexec"]);
        assert_eq!(o.recursive.attr_set, 0);
        assert_eq!(o.recursive.attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOEXEC);
        assert!(!p(&["ro"]).has_recursive());
    }

    #[test]
    fn recursive_atime_options_replace_the_whole_atime_field() {
        for (opt, want) in [
            ("rnoatime", MOUNT_ATTR_NOATIME),
            ("rstrictatime", MOUNT_ATTR_STRICTATIME),
            ("rnorelatime", MOUNT_ATTR_STRICTATIME),
            ("rrelatime", MOUNT_ATTR_RELATIME),
            ("ratime", MOUNT_ATTR_RELATIME),
            ("rnostrictatime", MOUNT_ATTR_RELATIME),
        ] {
            let o = p(&["rnoatime", opt]);
            assert_eq!(o.recursive.attr_set, want, "{opt}");
            assert_eq!(o.recursive.attr_clr, MOUNT_ATTR__ATIME, "{opt}");
        }
        let o = p(&["rnodiratime", "rdiratime"]);
        assert_eq!(o.recursive.attr_clr, MOUNT_ATTR_NODIRATIME);
    }

    #[test]
    fn nosymfollow_idmap_and_tmpcopyup_are_not_filesystem_data() {
        let o = p(&["nosymfollow", "idmap", "tmpcopyup", "mode=755"]);
        assert_eq!(o.flags, MS_NOSYMFOLLOW);
        assert_eq!(o.idmap, Some(Idmap::Top));
        assert!(o.tmpcopyup);
        assert_eq!(o.data_string().as_deref(), Some("mode=755"));
        assert_eq!(p(&["nosymfollow", "symfollow"]).flags, MsFlags::empty());
        assert_eq!(p(&["ridmap", "idmap"]).idmap, Some(Idmap::Recursive));
        assert_eq!(p(&["rbind"]).idmap, None);
    }
}
