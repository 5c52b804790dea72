//! The one-node cluster around a running crius: etcd on loopback, kube-apiserver,
//! kube-controller-manager, kube-scheduler and a kubelet, each a child process with its log in
//! the work directory, stopped by PID (SIGTERM, then SIGKILL after 15 s).
//!
//! The node's address is a /32 on a portless bridge of its own (`crcnf<n>`), so the kubelet
//! and the API server's kubelet client talk over an address no other machine routes to; the
//! kubelet's cgroups live under a cgroup root of its own (`/crius-conformance-<n>`, a slice under
//! the systemd driver: [`crate::node_cgroups`]), its state
//! under the work directory, and its kernel tunables (it sets six sysctls at start) are put
//! back on teardown.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_e2e::util::free_port;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::certs::{Client, Pki, path};
use crate::node_cgroups::CgroupDriver;

/// The sysctls a kubelet rewrites at start (`setupKernelTunables`), restored on teardown.
pub const KUBELET_SYSCTLS: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// One child process, stopped on drop.
pub struct Component {
    pub name: &'static str,
    child: Child,
    pub log: PathBuf,
}

impl Component {
    fn spawn(name: &'static str, log_dir: &Path, command: &mut Command) -> Result<Component> {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        eprintln!(
            "conformance: {name} pid {} (log {})",
            child.id(),
            log.display()
        );
        Ok(Component { name, child, log })
    }

    /// Fails with the log's tail when the process has exited.
    pub fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log ends with:\n{}",
                self.name,
                crius_e2e::util::tail_of_file(&self.log, 4000)
            );
        }
        Ok(())
    }

    /// SIGTERM, wait up to 15 s, then SIGKILL.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything the cluster's processes need to know.
pub struct Layout {
    pub k8s_bin: PathBuf,
    pub etcd: PathBuf,
    pub work: PathBuf,
    pub pki: Pki,
    pub node: String,
    pub node_ip: String,
    pub apiserver_port: u16,
    pub crius_socket: PathBuf,
    /// The kubelet's `cgroupRoot` (cgroupfs form) and `cgroupDriver`.
    pub cgroup_root: String,
    pub cgroup_driver: CgroupDriver,
    /// Whether [`KUBELET_FIXED_DIR`] was there before this run (else teardown removes it).
    pub kubelet_dir_existed: bool,
}

/// The kubelet's port: the suite reaches kubelets through the API server's node proxy at
/// `ports.KubeletPort`, a constant. Free on every host, as it listens on the node's own address.
const KUBELET_PORT: u16 = 10250;

/// Where the kubelet makes its device-plugin directory whatever `--root-dir` says.
pub const KUBELET_FIXED_DIR: &str = "/var/lib/kubelet";

impl Layout {
    pub fn logs(&self) -> PathBuf {
        self.work.join("logs")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.work.join("kubelet")
    }
    pub fn pod_logs(&self) -> PathBuf {
        self.work.join("pod-logs")
    }
    fn bin(&self, name: &str) -> PathBuf {
        self.k8s_bin.join(name)
    }
}

pub fn start_etcd(layout: &Layout) -> Result<(Component, u16)> {
    let client = free_port()?;
    let peer = free_port()?;
    let data = layout.work.join("etcd");
    let mut command = Command::new(&layout.etcd);
    command
        .arg("--name=conformance")
        .arg(format!("--data-dir={}", path(&data)?))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!(
            "--initial-cluster=conformance=http://127.0.0.1:{peer}"
        ))
        .arg("--unsafe-no-fsync");
    Ok((
        Component::spawn("etcd", &layout.logs(), &mut command)?,
        client,
    ))
}

pub fn start_apiserver(layout: &Layout, etcd_port: u16) -> Result<Component> {
    let pki = &layout.pki;
    let mut command = Command::new(layout.bin("kube-apiserver"));
    command
        .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", layout.apiserver_port))
        .arg(format!("--advertise-address={}", layout.node_ip))
        .arg("--endpoint-reconciler-type=none")
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg(format!("--client-ca-file={}", path(&pki.ca_cert())?))
        .arg(format!("--tls-cert-file={}", path(&pki.cert("apiserver"))?))
        .arg(format!(
            "--tls-private-key-file={}",
            path(&pki.key("apiserver"))?
        ))
        .arg(format!(
            "--kubelet-client-certificate={}",
            path(&pki.client_cert(Client::ApiserverToKubelet))?
        ))
        .arg(format!(
            "--kubelet-client-key={}",
            path(&pki.client_key(Client::ApiserverToKubelet))?
        ))
        .arg(format!(
            "--kubelet-certificate-authority={}",
            path(&pki.ca_cert())?
        ))
        .arg("--kubelet-preferred-address-types=InternalIP")
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!(
            "--service-account-key-file={}",
            path(&pki.sa_pub())?
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            path(&pki.sa_key())?
        ))
        .arg("--authorization-mode=Node,RBAC")
        .arg("--enable-admission-plugins=NodeRestriction")
        .arg("--allow-privileged=true")
        .arg("--profiling=false");
    Component::spawn("kube-apiserver", &layout.logs(), &mut command)
}

pub fn start_controller_manager(layout: &Layout) -> Result<Component> {
    let pki = &layout.pki;
    let kubeconfig = path(&pki.kubeconfig(Client::ControllerManager))?;
    let mut command = Command::new(layout.bin("kube-controller-manager"));
    command
        .arg(format!("--kubeconfig={kubeconfig}"))
        .arg(format!("--authentication-kubeconfig={kubeconfig}"))
        .arg(format!("--authorization-kubeconfig={kubeconfig}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()?))
        .arg("--leader-elect=false")
        .arg("--use-service-account-credentials=true")
        .arg(format!(
            "--service-account-private-key-file={}",
            path(&pki.sa_key())?
        ))
        .arg(format!("--root-ca-file={}", path(&pki.ca_cert())?))
        .arg(format!(
            "--cluster-signing-cert-file={}",
            path(&pki.ca_cert())?
        ))
        .arg(format!(
            "--cluster-signing-key-file={}",
            path(&pki.ca_key())?
        ));
    Component::spawn("kube-controller-manager", &layout.logs(), &mut command)
}

pub fn start_scheduler(layout: &Layout) -> Result<Component> {
    let kubeconfig = path(&layout.pki.kubeconfig(Client::Scheduler))?;
    let mut command = Command::new(layout.bin("kube-scheduler"));
    command
        .arg(format!("--kubeconfig={kubeconfig}"))
        .arg(format!("--authentication-kubeconfig={kubeconfig}"))
        .arg(format!("--authorization-kubeconfig={kubeconfig}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()?))
        .arg("--leader-elect=false");
    Component::spawn("kube-scheduler", &layout.logs(), &mut command)
}

/// The kubelet's configuration file: crius' cgroup driver under the node's own cgroup root,
/// cgroup v1 allowed (this host), crius' socket, x509 + webhook authentication, loopback DNS for pods, eviction
/// thresholds in absolute bytes, low enough that the disk of a shared development machine
/// (whose free space swings by gigabytes with the other builds) evicts nothing: with 1% of
/// this 252 GB disk the node went into DiskPressure mid-run and evicted test pods.
fn kubelet_config(layout: &Layout, port: u16, healthz: u16) -> Result<String> {
    let pki = &layout.pki;
    let socket = format!("unix://{}", path(&layout.crius_socket)?);
    let resolv = layout.work.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\nsearch crius.test\noptions ndots:2\n",
    )
    .with_context(|| format!("writing {}", resolv.display()))?;
    Ok(format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {node_ip}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
cgroupDriver: {cgroup_driver}
cgroupRoot: {cgroup_root}
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: {socket}
imageServiceEndpoint: {socket}
podLogsDir: {pod_logs}
resolvConf: {resolv}
clusterDomain: cluster.local
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard:
  memory.available: 100Mi
  nodefs.available: 500Mi
  nodefs.inodesFree: 1%
  imagefs.available: 500Mi
",
        node_ip = layout.node_ip,
        cert = path(&pki.cert("kubelet-serving"))?,
        key = path(&pki.key("kubelet-serving"))?,
        ca = path(&pki.ca_cert())?,
        cgroup_root = layout.cgroup_root,
        cgroup_driver = layout.cgroup_driver.as_str(),
        pod_logs = path(&layout.pod_logs())?,
        resolv = path(&resolv)?,
    ))
}

pub fn start_kubelet(layout: &Layout) -> Result<Component> {
    let config = layout.work.join("kubelet.yaml");
    std::fs::write(&config, kubelet_config(layout, KUBELET_PORT, free_port()?)?)
        .with_context(|| format!("writing {}", config.display()))?;
    std::fs::create_dir_all(layout.kubelet_root())?;
    std::fs::create_dir_all(layout.pod_logs())?;
    let mut command = Command::new(layout.bin("kubelet"));
    command
        .arg(format!("--config={}", path(&config)?))
        .arg(format!(
            "--kubeconfig={}",
            path(&layout.pki.kubeconfig(Client::Kubelet))?
        ))
        .arg(format!("--root-dir={}", path(&layout.kubelet_root())?))
        .arg(format!("--hostname-override={}", layout.node))
        .arg(format!("--node-ip={}", layout.node_ip))
        .arg("--v=2");
    Component::spawn("kubelet", &layout.logs(), &mut command)
}

/// `kubectl --kubeconfig <admin> ARGS`: its stdout, or an error with its stderr.
pub fn kubectl(layout: &Layout, args: &[&str]) -> Result<String> {
    let output = Command::new(layout.bin("kubectl"))
        .arg(format!(
            "--kubeconfig={}",
            path(&layout.pki.kubeconfig(Client::Admin))?
        ))
        .args(args)
        .output()
        .context("running kubectl")?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Polls `probe` every second for up to `timeout`, checking that `components` still run.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    components: &mut [&mut Component],
    mut probe: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        for component in components.iter_mut() {
            component.check()?;
        }
        if probe() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The node's address: a /32 on a portless bridge of its own (this kernel has no dummy
/// links). Deleted on drop.
pub struct NodeAddress {
    pub link: String,
    pub ip: String,
}

impl NodeAddress {
    pub fn create(n: u8) -> Result<NodeAddress> {
        let link = format!("crcnf{n}");
        let ip = format!("10.198.{n}.1");
        let _ = ip_cmd(&["link", "del", &link]);
        ip_cmd(&["link", "add", &link, "type", "bridge"])?;
        let address = NodeAddress { link, ip };
        ip_cmd(&[
            "addr",
            "add",
            &format!("{}/32", address.ip),
            "dev",
            &address.link,
        ])?;
        ip_cmd(&["link", "set", &address.link, "up"])?;
        Ok(address)
    }
}

impl Drop for NodeAddress {
    fn drop(&mut self) {
        let _ = ip_cmd(&["link", "del", &self.link]);
    }
}

fn ip_cmd(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Unmounts everything under `dir` (deepest first, lazily), as a killed kubelet leaves its
/// volume mounts behind.
pub fn unmount_under(dir: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut mounts: Vec<PathBuf> = crius_e2e::pods::leak_check::parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for mount in mounts {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The current values of [`KUBELET_SYSCTLS`].
pub fn save_sysctls() -> Vec<(String, String)> {
    KUBELET_SYSCTLS
        .iter()
        .filter_map(|name| {
            std::fs::read_to_string(Path::new("/proc/sys").join(name))
                .ok()
                .map(|value| (name.to_string(), value.trim().to_string()))
        })
        .collect()
}

pub fn restore_sysctls(saved: &[(String, String)]) {
    for (name, value) in saved {
        let file = Path::new("/proc/sys").join(name);
        if std::fs::read_to_string(&file)
            .map(|v| v.trim().to_string())
            .ok()
            != Some(value.clone())
            && let Err(e) = std::fs::write(&file, value)
        {
            eprintln!("conformance: restoring {}: {e}", file.display());
        }
    }
}
