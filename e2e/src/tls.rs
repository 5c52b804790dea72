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
    let serial = format!("0x{:016x}", rand::random::<u64>());
    let curve = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        dir,
        &format!(
            "req -x509 -new -config openssl.cnf -extensions v3_ca {curve} -keyout ca.key -out ca.crt -days 7"
        ),
    )?;
    openssl(
        dir,
        &format!(
            "req -new -config openssl.cnf -subj /CN=localhost {curve} -keyout server.key -out server.csr"
        ),
    )?;
    openssl(
        dir,
        &format!(
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial {serial} -days 7 \
             -extfile openssl.cnf -extensions v3_srv -out server.crt"
        ),
    )?;
    Ok(files)
}

/// Runs `openssl <args>` (split on whitespace) in `dir`.
fn openssl(dir: &Path, args: &str) -> Result<()> {
    let output = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .context("running openssl (install it: hack/install-deps.sh)")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
