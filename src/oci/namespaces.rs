//! linux.namespaces of containers and the pause process.

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::{ContainerContext, NsMode, PodContext, SpecError, SpecOptions, invalid};
use crate::api;
use crate::api::NamespaceMode;

fn push(out: &mut Vec<LinuxNamespace>, typ: LinuxNamespaceType, mode: &NsMode) {
    let path = match mode {
        NsMode::Host => return,
        NsMode::New => None,
        NsMode::Path(p) => Some(p.clone()),
    };
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ).set_path(path);
    out.push(ns);
}

/// The pod's user namespace, joined first (it owns the pod's other namespaces).
fn user_namespace(pod: &PodContext) -> Vec<LinuxNamespace> {
    let mut out = Vec::new();
    if let Some(u) = &pod.userns {
        push(
            &mut out,
            LinuxNamespaceType::User,
            &NsMode::Path(u.path.to_path_buf()),
        );
    }
    out
}

fn pid_mode(opts: Option<&api::NamespaceOption>) -> Result<NamespaceMode, SpecError> {
    let raw = opts.map_or(0, |o| o.pid);
    NamespaceMode::try_from(raw).map_err(|_| invalid(format!("unknown pid namespace mode {raw}")))
}

/// mount always new; net/ipc/uts from the pod; pid by the container's mode; cgroup new on v2
/// (privileged containers see the host's cgroup tree, as in cri-o).
pub fn container_namespaces(
    pod: &PodContext,
    c: &ContainerContext,
    privileged: bool,
    opts: &SpecOptions,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    let nso = c
        .config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    let pid = match pid_mode(nso)? {
        NamespaceMode::Pod => pod.pod_pid.clone(),
        NamespaceMode::Container => NsMode::New,
        NamespaceMode::Node => NsMode::Host,
        NamespaceMode::Target => match &c.target_pid {
            Some(p) => NsMode::Path(p.clone()),
            None => {
                let target = nso.map(|o| o.target_id.as_str()).unwrap_or_default();
                return Err(invalid(format!(
                    "pid namespace mode TARGET without a target container pid namespace (target {target:?})"
                )));
            }
        },
    };
    let mut out = user_namespace(pod);
    push(&mut out, LinuxNamespaceType::Mount, &NsMode::New);
    push(&mut out, LinuxNamespaceType::Network, &pod.net);
    push(&mut out, LinuxNamespaceType::Ipc, &pod.ipc);
    push(&mut out, LinuxNamespaceType::Uts, &pod.uts);
    push(&mut out, LinuxNamespaceType::Pid, &pid);
    if opts.cgroup_v2() && !privileged {
        push(&mut out, LinuxNamespaceType::Cgroup, &NsMode::New);
    }
    Ok(out)
}

/// The pause process: net/ipc/uts from the pod, pid new unless the pod uses the node's.
pub fn pause_namespaces(
    pod: &PodContext,
    psc: &api::LinuxSandboxSecurityContext,
    opts: &SpecOptions,
) -> Vec<LinuxNamespace> {
    let host_pid = psc
        .namespace_options
        .as_ref()
        .is_some_and(|o| o.pid == NamespaceMode::Node as i32);
    let mut out = user_namespace(pod);
    push(&mut out, LinuxNamespaceType::Mount, &NsMode::New);
    push(&mut out, LinuxNamespaceType::Network, &pod.net);
    push(&mut out, LinuxNamespaceType::Ipc, &pod.ipc);
    push(&mut out, LinuxNamespaceType::Uts, &pod.uts);
    let pid = if host_pid { NsMode::Host } else { NsMode::New };
    push(&mut out, LinuxNamespaceType::Pid, &pid);
    if opts.cgroup_v2() {
        push(&mut out, LinuxNamespaceType::Cgroup, &NsMode::New);
    }
    out
}
