//! The cluster's PKI, made with the `openssl` command: one CA, the API server's and the
//! kubelet's serving certificates, a client certificate per component, the service-account
//! signing key, and a kubeconfig per client. ECDSA P-256 throughout (fast to generate; every
//! component accepts it), valid for 7 days.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const DAYS: &str = "7";

/// Where everything of [`generate`] lives.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
}

/// A client identity: its kubeconfig and the files it names.
#[derive(Debug, Clone, Copy)]
pub enum Client {
    Admin,
    ControllerManager,
    Scheduler,
    Kubelet,
    ApiserverToKubelet,
}

impl Client {
    const ALL: [Client; 5] = [
        Client::Admin,
        Client::ControllerManager,
        Client::Scheduler,
        Client::Kubelet,
        Client::ApiserverToKubelet,
    ];

    fn file_stem(self) -> &'static str {
        match self {
            Client::Admin => "admin",
            Client::ControllerManager => "controller-manager",
            Client::Scheduler => "scheduler",
            Client::Kubelet => "kubelet-client",
            Client::ApiserverToKubelet => "apiserver-kubelet-client",
        }
    }

    /// `/O=…/CN=…` as the API server's x509 authenticator reads it (O = groups).
    fn subject(self, node: &str) -> String {
        match self {
            Client::Admin => "/O=system:masters/CN=crius-conformance-admin".to_string(),
            Client::ControllerManager => "/CN=system:kube-controller-manager".to_string(),
            Client::Scheduler => "/CN=system:kube-scheduler".to_string(),
            Client::Kubelet => format!("/O=system:nodes/CN=system:node:{node}"),
            Client::ApiserverToKubelet => {
                "/O=system:masters/CN=kube-apiserver-kubelet-client".to_string()
            }
        }
    }
}

impl Pki {
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn cert(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.crt"))
    }
    pub fn key(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.key"))
    }
    pub fn client_cert(&self, client: Client) -> PathBuf {
        self.cert(client.file_stem())
    }
    pub fn client_key(&self, client: Client) -> PathBuf {
        self.key(client.file_stem())
    }
    pub fn kubeconfig(&self, client: Client) -> PathBuf {
        self.dir.join(format!("{}.kubeconfig", client.file_stem()))
    }
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
}

/// Generates the PKI into `dir` for an API server at `https://127.0.0.1:<apiserver_port>` and
/// a kubelet serving on `node_ip` as node `node`.
pub fn generate(dir: &Path, node: &str, node_ip: &str, apiserver_port: u16) -> Result<Pki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pki = Pki {
        dir: dir.to_path_buf(),
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        DAYS,
        "-subj",
        "/CN=crius-conformance-ca",
        "-keyout",
        &path(&pki.ca_key())?,
        "-out",
        &path(&pki.ca_cert())?,
    ])?;
    let apiserver_sans = format!(
        "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
         DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.0.0.1,IP:{node_ip}"
    );
    sign(
        &pki,
        "apiserver",
        "/CN=kube-apiserver",
        "serverAuth",
        Some(&apiserver_sans),
    )?;
    sign(
        &pki,
        "kubelet-serving",
        &format!("/O=system:nodes/CN=system:node:{node}"),
        "serverAuth",
        Some(&format!("DNS:{node},IP:127.0.0.1,IP:{node_ip}")),
    )?;
    for client in Client::ALL {
        sign(
            &pki,
            client.file_stem(),
            &client.subject(node),
            "clientAuth",
            None,
        )?;
        write_kubeconfig(&pki, client, apiserver_port)?;
    }
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-out",
        &path(&pki.sa_key())?,
    ])?;
    openssl(&[
        "pkey",
        "-in",
        &path(&pki.sa_key())?,
        "-pubout",
        "-out",
        &path(&pki.sa_pub())?,
    ])?;
    Ok(pki)
}

/// A key and a certificate signed by the CA, with the given extended key usage and SANs.
fn sign(pki: &Pki, stem: &str, subject: &str, usage: &str, sans: Option<&str>) -> Result<()> {
    let csr = pki.dir.join(format!("{stem}.csr"));
    let ext = pki.dir.join(format!("{stem}.ext"));
    let mut extensions = format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage={usage}\n"
    );
    if let Some(sans) = sans {
        extensions.push_str(&format!("subjectAltName={sans}\n"));
    }
    std::fs::write(&ext, extensions).with_context(|| format!("writing {}", ext.display()))?;
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        &path(&pki.key(stem))?,
        "-out",
        &path(&csr)?,
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path(&csr)?,
        "-CA",
        &path(&pki.ca_cert())?,
        "-CAkey",
        &path(&pki.ca_key())?,
        "-CAcreateserial",
        "-days",
        DAYS,
        "-extfile",
        &path(&ext)?,
        "-out",
        &path(&pki.cert(stem))?,
    ])?;
    let _ = std::fs::remove_file(csr);
    let _ = std::fs::remove_file(ext);
    Ok(())
}

fn write_kubeconfig(pki: &Pki, client: Client, port: u16) -> Result<()> {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: crius-conformance
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: crius-conformance
  context:
    cluster: crius-conformance
    user: {user}
current-context: crius-conformance
",
        ca = path(&pki.ca_cert())?,
        user = client.file_stem(),
        cert = path(&pki.client_cert(client))?,
        key = path(&pki.client_key(client))?,
    );
    let file = pki.kubeconfig(client);
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}

fn openssl(args: &[&str]) -> Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl (apt-get install openssl)")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

pub fn path(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("non-UTF-8 path {}", p.display()))
}
