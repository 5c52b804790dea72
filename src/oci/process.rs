//! process: args, env, cwd, terminal and user of a container or the pause process.

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Process, User};

use super::{ContainerContext, PodContext, SpecError, invalid};
use crate::api;
use crate::libcontainer::user::{
    UserError, lookup_group, lookup_user, lookup_user_by_uid, supplementary_groups,
};

/// PATH when neither the image nor the request sets one (the usual Linux default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// pause runs first to be killed last on OOM (the runtime clamps it if refused).
const PAUSE_OOM_SCORE_ADJ: i32 = -998;

/// A Process with nothing set beyond what every spec needs.
fn blank_process() -> Process {
    let mut p = Process::default();
    p.set_terminal(Some(false))
        .set_rlimits(None)
        .set_capabilities(None)
        .set_apparmor_profile(None)
        .set_selinux_label(None)
        .set_scheduler(None)
        .set_io_priority(None)
        .set_no_new_privileges(Some(true))
        .set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]))
        .set_cwd(PathBuf::from("/"));
    p
}

/// kubelet rules: `command` replaces the image Entrypoint and drops its Cmd; `args` replace Cmd.
pub fn args(
    config: &api::ContainerConfig,
    image: &ImageConfiguration,
) -> Result<Vec<String>, SpecError> {
    let ic = image.config().clone().unwrap_or_default();
    let mut out = if config.command.is_empty() {
        ic.entrypoint().clone().unwrap_or_default()
    } else {
        config.command.clone()
    };
    if !config.args.is_empty() {
        out.extend(config.args.iter().cloned());
    } else if config.command.is_empty() {
        out.extend(ic.cmd().clone().unwrap_or_default());
    }
    if out.is_empty() {
        return Err(invalid(
            "no command specified: neither the request nor the image has one",
        ));
    }
    Ok(out)
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Set `key=value`, replacing an existing entry in place (so order is kept).
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Image Env overlaid by the request's envs, plus PATH (and TERM for a tty) when missing.
///
/// CRI env values are bytes since 1.34.9/1.35.6/1.36.2, but the OCI config is JSON, whose
/// strings are UTF-8: a value that is not UTF-8 is refused rather than silently mangled.
pub fn env(
    config: &api::ContainerConfig,
    image: &ImageConfiguration,
    hostname: &str,
) -> Result<Vec<String>, SpecError> {
    let ic = image.config().clone().unwrap_or_default();
    let mut env: Vec<String> = Vec::new();
    for e in ic.env().iter().flatten() {
        set_env(
            &mut env,
            env_key(e),
            e.split_once('=').map_or("", |(_, v)| v),
        );
    }
    if !env.iter().any(|e| env_key(e) == "PATH") {
        set_env(&mut env, "PATH", DEFAULT_PATH);
    }
    if config.tty && !env.iter().any(|e| env_key(e) == "TERM") {
        set_env(&mut env, "TERM", "xterm");
    }
    // cri-o sets HOSTNAME; the image or the request may still override it.
    if !hostname.is_empty() && !env.iter().any(|e| env_key(e) == "HOSTNAME") {
        set_env(&mut env, "HOSTNAME", hostname);
    }
    for kv in &config.envs {
        let value = std::str::from_utf8(&kv.value).map_err(|_| {
            invalid(format!(
                "environment variable {}: value is not UTF-8, which an OCI config cannot carry",
                kv.key
            ))
        })?;
        set_env(&mut env, &kv.key, value);
    }
    Ok(env)
}

/// working_dir, else the image's WorkingDir, else "/".
pub fn cwd(
    config: &api::ContainerConfig,
    image: &ImageConfiguration,
) -> Result<PathBuf, SpecError> {
    let from_image = image
        .config()
        .as_ref()
        .and_then(|c| c.working_dir().clone())
        .unwrap_or_default();
    let dir = [config.working_dir.as_str(), from_image.as_str()]
        .into_iter()
        .find(|d| !d.is_empty())
        .unwrap_or("/");
    if !dir.starts_with('/') {
        return Err(invalid(format!(
            "working directory {} is not absolute",
            crate::validate::quote(dir)
        )));
    }
    Ok(PathBuf::from(dir))
}

fn user_err(e: UserError) -> SpecError {
    match e {
        UserError::UserNotFound { .. } | UserError::GroupNotFound { .. } => invalid(e.to_string()),
        other => SpecError::FailedPrecondition(other.to_string()),
    }
}

fn id_from_i64(what: &str, v: i64) -> Result<u32, SpecError> {
    u32::try_from(v).map_err(|_| invalid(format!("{what} {v} is out of range")))
}

/// The resolved user: uid, primary gid and (when known) the passwd name for group lookup.
struct Resolved {
    uid: u32,
    gid: u32,
    name: Option<String>,
}

fn by_uid(rootfs: &Path, uid: u32) -> Result<Resolved, SpecError> {
    // A uid absent from /etc/passwd is fine: it runs with gid 0.
    Ok(match lookup_user_by_uid(rootfs, uid).map_err(user_err)? {
        Some(e) => Resolved {
            uid,
            gid: e.gid,
            name: Some(e.name),
        },
        None => Resolved {
            uid,
            gid: 0,
            name: None,
        },
    })
}

fn by_name(rootfs: &Path, name: &str) -> Result<Resolved, SpecError> {
    let (uid, gid, _) = lookup_user(rootfs, name).map_err(user_err)?;
    Ok(Resolved {
        uid,
        gid,
        name: Some(name.to_string()),
    })
}

/// The image's `User`: "uid", "name", "uid:gid", "name:group" (or empty: root).
fn from_image_user(rootfs: &Path, spec: &str) -> Result<Resolved, SpecError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut r = match user {
        "" => by_uid(rootfs, 0)?,
        u => match u.parse::<u32>() {
            Ok(uid) => by_uid(rootfs, uid)?,
            Err(_) => by_name(rootfs, u)?,
        },
    };
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        r.gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup_group(rootfs, g).map_err(user_err)?,
        };
    }
    Ok(r)
}

/// CRI SupplementalGroupsPolicy Strict: only the request's groups, not /etc/group's.
const SUPPLEMENTAL_GROUPS_STRICT: i32 = 1;

/// process.user from the security context, else the image's User, resolved in the rootfs.
pub fn user(
    rootfs: &Path,
    sc: &api::LinuxContainerSecurityContext,
    image: &ImageConfiguration,
) -> Result<User, SpecError> {
    let mut r = if !sc.run_as_username.is_empty() {
        if sc.run_as_user.is_some() {
            return Err(invalid("run_as_user and run_as_username are both set"));
        }
        by_name(rootfs, &sc.run_as_username)?
    } else if let Some(v) = sc.run_as_user {
        by_uid(rootfs, id_from_i64("run_as_user", v.value)?)?
    } else {
        if sc.run_as_group.is_some() {
            return Err(invalid(
                "run_as_group is set without run_as_user or run_as_username",
            ));
        }
        let image_user = image
            .config()
            .as_ref()
            .and_then(|c| c.user().clone())
            .unwrap_or_default();
        from_image_user(rootfs, &image_user)?
    };
    if let Some(g) = sc.run_as_group {
        r.gid = id_from_i64("run_as_group", g.value)?;
    }

    let mut gids = vec![r.gid];
    if sc.supplemental_groups_policy != SUPPLEMENTAL_GROUPS_STRICT
        && let Some(name) = &r.name
    {
        gids.extend(supplementary_groups(rootfs, name));
    }
    for g in &sc.supplemental_groups {
        gids.push(id_from_i64("supplemental group", *g)?);
    }
    let mut additional: Vec<u32> = Vec::new();
    for g in gids {
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    let mut u = User::default();
    u.set_uid(r.uid)
        .set_gid(r.gid)
        .set_additional_gids(Some(additional))
        .set_username(None);
    Ok(u)
}

/// The container's process without capabilities/seccomp-related fields (security.rs adds them).
pub fn container_process(
    pod: &PodContext,
    c: &ContainerContext,
    sc: &api::LinuxContainerSecurityContext,
) -> Result<Process, SpecError> {
    let mut p = blank_process();
    p.set_terminal(Some(c.config.tty))
        .set_args(Some(args(c.config, c.image)?))
        .set_env(Some(env(c.config, c.image, &pod.config.hostname)?))
        .set_cwd(cwd(c.config, c.image)?)
        .set_user(user(c.rootfs, sc, c.image)?);
    Ok(p)
}

/// ["/pause"] as the pod's run_as_user/run_as_group (root by default), with no
/// capabilities at all.
pub fn pause_process(
    psc: &api::LinuxSandboxSecurityContext,
    image_args: Option<Vec<String>>,
) -> Result<Process, SpecError> {
    let uid = match psc.run_as_user {
        Some(v) => id_from_i64("run_as_user", v.value)?,
        None => 0,
    };
    let gid = match psc.run_as_group {
        Some(v) => id_from_i64("run_as_group", v.value)?,
        None => 0,
    };
    let mut u = User::default();
    u.set_uid(uid)
        .set_gid(gid)
        .set_additional_gids(Some(vec![gid]));
    let mut p = blank_process();
    let args = match image_args {
        Some(args) if args.is_empty() => {
            return Err(SpecError::InvalidArgument(
                "the pause image has no entrypoint or cmd".into(),
            ));
        }
        Some(args) => args,
        None => vec!["/pause".into()],
    };
    p.set_args(Some(args))
        .set_user(u)
        .set_capabilities(Some(super::security::no_capabilities()))
        .set_oom_score_adj(Some(PAUSE_OOM_SCORE_ADJ));
    Ok(p)
}
