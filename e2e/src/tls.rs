//! Throw-away TLS material: a CA and a server certificate for `127.0.0.1`, `::1` and `localhost`,
//! generated with the `openssl` command line tool into a directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The files [`generate`] writes.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM CA certificate: what a client must trust (`<certs_dir>/<host:port>/ca.crt`).
    pub ca_cert: PathBuf,
    /// PEM server certificate signed by the CA.
    pub server_cert: PathBuf,
    /// PEM (PKCS#8) private key of the server certificate.
    pub server_key: PathBuf,
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = crius-e2e-ca
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_srv]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Generates a fresh P-256 CA and a server certificate it signs, valid for a week, in `dir`.
pub fn generate(dir: &Path) -> Result<TlsFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cnf = dir.join("openssl.cnf");
    std::fs::write(&cnf, OPENSSL_CNF).with_context(|| format!("writing {}", cnf.display()))?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    let ca_key = dir.join("ca.key");
    let csr = dir.join("server.csr");
    let serial = format!("0x{:016x}", rand::random::<u64>());
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-config",
        path_str(&cnf)?,
        "-extensions",
        "v3_ca",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path_str(&ca_key)?,
        "-out",
        path_str(&files.ca_cert)?,
        "-days",
        "7",
    ])?;
    openssl(&[
        "req",
        "-new",
        "-config",
        path_str(&cnf)?,
        "-subj",
        "/CN=localhost",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path_str(&files.server_key)?,
        "-out",
        path_str(&csr)?,
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&csr)?,
        "-CA",
        path_str(&files.ca_cert)?,
        "-CAkey",
        path_str(&ca_key)?,
        "-set_serial",
        &serial,
        "-days",
        "7",
        "-extfile",
        path_str(&cnf)?,
        "-extensions",
        "v3_srv",
        "-out",
        path_str(&files.server_cert)?,
    ])?;
    Ok(files)
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("non-UTF-8 path {}", path.display()))
}

fn openssl(args: &[&str]) -> Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl (install it: hack/install-deps.sh)")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
