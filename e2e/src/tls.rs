//! Throw-away TLS material: a CA and a server certificate for `127.0.0.1`, `::1` and `localhost`,
//! and a token-signing key with its self-signed certificate, generated with the `openssl` command
//! line tool into a directory.

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

/// The files [`generate_signing_cert`] writes.
#[derive(Debug, Clone)]
pub struct SigningFiles {
    /// PEM self-signed certificate of the signing key: what a verifier must trust.
    pub cert: PathBuf,
    /// PEM (PKCS#8) P-256 private key.
    pub key: PathBuf,
}

const SIGNING_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = crius-e2e-token-signer
[v3_signer]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
subjectKeyIdentifier = hash
";

/// Generates a fresh P-256 key and a self-signed certificate for it, valid for a week, in `dir`:
/// the key a token server signs JWTs with, and the root a registry verifies them against.
pub fn generate_signing_cert(dir: &Path) -> Result<SigningFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cnf = dir.join("signer.cnf");
    std::fs::write(&cnf, SIGNING_CNF).with_context(|| format!("writing {}", cnf.display()))?;
    openssl(
        dir,
        "req -x509 -new -config signer.cnf -extensions v3_signer \
         -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout signer.key -out signer.crt -days 7",
    )?;
    Ok(SigningFiles {
        cert: dir.join("signer.crt"),
        key: dir.join("signer.key"),
    })
}

/// The DER bytes inside the first PEM block of `pem` (`-----BEGIN ...-----` to `-----END`).
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END "))
        .map(str::trim)
        .collect();
    if body.is_empty() {
        bail!("no PEM block found");
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("decoding the PEM body")
}

/// The files [`generate_client`] writes.
#[derive(Debug, Clone)]
pub struct ClientCertFiles {
    /// PEM CA that signed the client certificate: what a registry requiring client certificates
    /// trusts (distribution's `http.tls.clientcas`).
    pub ca_cert: PathBuf,
    /// PEM client certificate (`<certs_dir>/<host:port>/client.cert`).
    pub cert: PathBuf,
    /// PEM (PKCS#8) private key of the client certificate (`client.key`).
    pub key: PathBuf,
}

const CLIENT_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = crius-e2e-client-ca
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Generates a fresh P-256 CA and a TLS client certificate (`clientAuth`) it signs, valid for a
/// week, in `dir`.
pub fn generate_client(dir: &Path) -> Result<ClientCertFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cnf = dir.join("client.cnf");
    std::fs::write(&cnf, CLIENT_CNF).with_context(|| format!("writing {}", cnf.display()))?;
    let serial = format!("0x{:016x}", rand::random::<u64>());
    let curve = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        dir,
        &format!(
            "req -x509 -new -config client.cnf -extensions v3_ca {curve} -keyout client-ca.key \
             -out client-ca.crt -days 7"
        ),
    )?;
    openssl(
        dir,
        &format!(
            "req -new -config client.cnf -subj /CN=crius-e2e-client {curve} -keyout client.key \
             -out client.csr"
        ),
    )?;
    openssl(
        dir,
        &format!(
            "x509 -req -in client.csr -CA client-ca.crt -CAkey client-ca.key -set_serial {serial} \
             -days 7 -extfile client.cnf -extensions v3_client -out client.cert"
        ),
    )?;
    Ok(ClientCertFiles {
        ca_cert: dir.join("client-ca.crt"),
        cert: dir.join("client.cert"),
        key: dir.join("client.key"),
    })
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
