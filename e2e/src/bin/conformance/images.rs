//! The images the NodeConformance specs run, built offline and pushed to the loopback registry,
//! plus the `--kube-test-repo-list` file that points `e2e.test` at them.
//!
//! `e2e.test` names its images `<registry key>/<name>:<version>`
//! (`test/utils/image/manifest.go`); the repo list replaces every registry key, so all of them
//! resolve to `127.0.0.1:<port>/…`. What is served, and from what:
//!
//! | upstream image | here |
//! | --- | --- |
//! | `e2e-test-images/agnhost:2.63.0` (and `2.55`, AgnhostPrev) | the `agnhost` binary from `K8S_BIN` (built from the same tree as `e2e.test`) as `/agnhost`, `/agnhost-2` linking to it, `ENTRYPOINT ["/agnhost"]`, `CMD ["pause"]`, `/uploads`, a self-signed `/localhost.crt` + `.key`, user `user-defined-in-image` (1000) in group `group-defined-in-image` (50000), as upstream's Dockerfile, and `/var/registry` holding `pause:testing` for `agnhost fake-registry-server` (upstream downloads `pause:3.10.2` into it; here the pause image below); on a busybox root instead of Alpine, with the host's `curl`, `bash`, `nc` (netcat-openbsd) and dash as `/bin/sh` and the libraries they load (no bind-tools, iperf or coredns) |
//! | `e2e-test-images/busybox:1.37.0-1` | Debian's static busybox, applets as symlinks |
//! | `e2e-test-images/nonroot:1.5` | busybox root with `USER 1234` (upstream: debian-base with `USER 1234`) |
//! | `e2e-test-images/nonewprivs:1.4` | `/usr/local/bin/nnp`, setuid root, printing `Effective uid: <euid>` ([`crius_e2e::critest_images::nnp_elf`]; upstream: the same program in Go), `CMD ["nnp"]` |
//! | `pause:3.10.2` | crius' own built-in pause binary as `/pause`, `ENTRYPOINT ["/pause"]` |
//! | `e2e-test-images/glibc-dns-testing:2.0.0` | this Debian 12 host's `/bin/sh`, `/bin/hostname`, glibc and `/etc/nsswitch.conf` (upstream: Debian bookworm-slim with dnsutils) |
//!
//! Not served (the specs that need them fail on the pull): `nginx`, `httpd`, `perl`,
//! `sample-apiserver`, `ipc-utils`, `volume/*`, `node-perf/*` and the
//! rest of the manifest. The invalid registry points at a closed loopback port.

use std::path::Path;

use anyhow::{Context, Result};
use crius_e2e::critest_images::nnp_elf;
use crius_e2e::images::{self, ConfigSpec, Format, ImageBuild};
use crius_e2e::layer::{Compression, Layer, TarBuilder};
use crius_e2e::registry::TestRegistry;

const E2E: &str = "e2e-test-images";
const KIND: &str = "conformance";

/// Builds and pushes every image; returns the references pushed.
pub async fn push_all(
    registry: &TestRegistry,
    k8s_bin: &Path,
    pause: &Path,
) -> Result<Vec<String>> {
    let agnhost_bin = k8s_bin.join("agnhost");
    let agnhost_bin = std::fs::read(&agnhost_bin)
        .with_context(|| format!("reading {}", agnhost_bin.display()))?;
    let pause_bin = std::fs::read(pause).with_context(|| format!("reading {}", pause.display()))?;
    let all = tokio::task::spawn_blocking(move || -> Result<Vec<(String, ImageBuild)>> {
        let pause = pause_image(&pause_bin)?;
        let agnhost = agnhost(&agnhost_bin, &pause)?;
        Ok(vec![
            (format!("{E2E}/agnhost:2.63.0"), agnhost.clone()),
            (format!("{E2E}/agnhost:2.55"), agnhost),
            (format!("{E2E}/busybox:1.37.0-1"), busybox()?),
            (format!("{E2E}/nonroot:1.5"), nonroot()?),
            (format!("{E2E}/nonewprivs:1.4"), nonewprivs()?),
            ("pause:3.10.2".to_string(), pause),
            (
                format!("{E2E}/glibc-dns-testing:2.0.0"),
                glibc_dns_testing()?,
            ),
        ])
    })
    .await
    .context("image builder panicked")??;
    let mut pushed = Vec::new();
    for (name, image) in &all {
        let (repo, tag) = name
            .rsplit_once(':')
            .with_context(|| format!("{name} has no tag"))?;
        images::push_image(registry, repo, tag, image)
            .await
            .with_context(|| format!("pushing {name}"))?;
        pushed.push(format!("{}/{name}", registry.host()));
    }
    Ok(pushed)
}

/// The `--kube-test-repo-list` YAML: every registry key of `manifest.go` on the local
/// registry, except the invalid one, which stays unreachable (a closed loopback port).
pub fn repo_list(registry: &TestRegistry) -> String {
    let host = registry.host();
    format!(
        "promoterE2eRegistry: {host}/{E2E}
buildImageRegistry: {host}/build-image
invalidRegistry: 127.0.0.1:9/invalid
gcEtcdRegistry: {host}
gcRegistry: {host}
sigStorageRegistry: {host}/sig-storage
privateRegistry: {host}/k8s-authenticated-test
dockerLibraryRegistry: {host}/library
cloudProviderGcpRegistry: {host}/cloud-provider-gcp
"
    )
}

fn spec(name: &str) -> ConfigSpec {
    ConfigSpec::new(KIND).label("org.crius.e2e.conformance-image", name)
}

fn busybox() -> Result<ImageBuild> {
    ImageBuild::new(
        Format::Oci,
        &spec("busybox"),
        vec![images::busybox_layer()?],
    )
}

fn nonroot() -> Result<ImageBuild> {
    ImageBuild::new(
        Format::Oci,
        &spec("nonroot").user("1234"),
        vec![images::busybox_layer()?],
    )
}

fn agnhost(binary: &[u8], pause: &ImageBuild) -> Result<ImageBuild> {
    let mut tar = TarBuilder::new();
    tar.file("agnhost", 0o755, binary)?
        .symlink("agnhost-2", "agnhost")?
        .dir("uploads", 0o755)?
        .dir("etc", 0o755)?
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnogroup:x:65534:\n",
        )?
        .dir("home", 0o755)?
        .dir_owned("home/user-defined-in-image", 0o755, 1000, 1000)?;
    let (cert, key) = localhost_certificate()?;
    tar.file("localhost.crt", 0o644, &cert)?
        .file("localhost.key", 0o644, &key)?;
    let mut spec = spec("agnhost");
    spec.entrypoint = vec!["/agnhost".into()];
    spec.cmd = vec!["pause".into()];
    ImageBuild::new(
        Format::Oci,
        &spec,
        vec![
            images::busybox_layer()?,
            Layer::from_tar(&tar.finish()?, Compression::Gzip(1))?,
            fake_registry_layer("pause", "testing", pause)?,
            host_programs_layer(&AGNHOST_HOST_PROGRAMS)?,
        ],
    )
}

/// `/localhost.crt` and `/localhost.key`: upstream's image adds a self-signed certificate for
/// `localhost` (agnhost `porter`, and `netexec --tls-cert-file` in the https lifecycle-hook
/// specs); here a fresh one from `openssl`.
fn localhost_certificate() -> Result<(Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = (
        dir.path().join("localhost.crt"),
        dir.path().join("localhost.key"),
    );
    let output = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("running openssl")?;
    if !output.status.success() {
        anyhow::bail!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((std::fs::read(cert)?, std::fs::read(key)?))
}

/// Programs of the host copied into agnhost (host path, image path), with every shared
/// library `ldd` names for them, each at the path the loader looks for. Upstream's image is
/// Alpine with curl, bash and netcat-openbsd: the suite runs `curl` and `nc -u` (network
/// specs) and `/bin/bash` (probe and lifecycle specs). `/bin/sh` is the host's dash, because
/// Debian's static busybox shell runs its own applets before `$PATH` (its `nc` has no `-u`),
/// which Alpine's does not.
const AGNHOST_HOST_PROGRAMS: [(&str, &str); 4] = [
    ("/usr/bin/curl", "/usr/bin/curl"),
    ("/bin/bash", "/bin/bash"),
    ("/bin/nc.openbsd", "/usr/bin/nc"),
    ("/bin/dash", "/bin/sh"),
];

fn host_programs_layer(programs: &[(&str, &str)]) -> Result<Layer> {
    let mut files = Vec::new();
    for (program, in_image) in programs {
        let mut with = with_libraries(Path::new(program))?.into_iter();
        if with.next().is_some() {
            files.push((std::path::PathBuf::from(program), in_image.to_string()));
        }
        files.extend(with.map(|lib| {
            let name = lib.to_string_lossy().into_owned();
            (lib, name)
        }));
    }
    files.sort();
    files.dedup();
    let mut tar = TarBuilder::new();
    let mut made = std::collections::BTreeSet::new();
    for (file, name) in files {
        let name = name.trim_start_matches('/').to_string();
        let mut so_far = String::new();
        if let Some((dirs, _)) = name.rsplit_once('/') {
            for part in dirs.split('/') {
                if !so_far.is_empty() {
                    so_far.push('/');
                }
                so_far.push_str(part);
                if made.insert(so_far.clone()) {
                    tar.dir(&so_far, 0o755)?;
                }
            }
        }
        // Read through symlinks: the layer holds the library under the name asked for.
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        tar.file(&name, 0o755, &data)?;
    }
    Layer::from_tar(&tar.finish()?, Compression::Gzip(1))
}

/// `program` and the libraries `ldd` resolves for it.
fn with_libraries(program: &Path) -> Result<Vec<std::path::PathBuf>> {
    let output = std::process::Command::new("ldd")
        .arg(program)
        .output()
        .context("running ldd")?;
    if !output.status.success() {
        anyhow::bail!("ldd {} failed (is it installed?)", program.display());
    }
    let mut files = vec![program.to_path_buf()];
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = line
            .split("=>")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(path) = path {
            files.push(std::path::PathBuf::from(path));
        }
    }
    Ok(files)
}

/// `/var/registry`, what `agnhost fake-registry-server` serves (the private-registry pull
/// specs start it): `<name>/manifests/<tag>` holding the manifest's digest, manifests and blobs
/// at `<dir>/sha256/<first two hex>/<hex>/data`. Upstream's image fills it at build time with
/// `registry.k8s.io/pause:3.10.2` as `pause:testing`; here the pause image of [`pause_image`].
fn fake_registry_layer(name: &str, tag: &str, image: &ImageBuild) -> Result<Layer> {
    fn data_path(dir: &str, digest: &str) -> Result<(String, String)> {
        let hex = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("{digest} is not sha256"))?;
        let parent = format!("{dir}/sha256/{}/{hex}", &hex[..2]);
        Ok((parent.clone(), format!("{parent}/data")))
    }
    let base = format!("var/registry/{name}");
    let mut tar = TarBuilder::new();
    let mut made = std::collections::BTreeSet::new();
    let mut dir_all = |tar: &mut TarBuilder, path: &str| -> Result<()> {
        let mut so_far = String::new();
        for part in path.split('/') {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            if made.insert(so_far.clone()) {
                tar.dir(&so_far, 0o755)?;
            }
        }
        Ok(())
    };
    let manifests = format!("{base}/manifests");
    let blobs = format!("{base}/blobs");
    dir_all(&mut tar, &manifests)?;
    tar.file(
        &format!("{manifests}/{tag}"),
        0o644,
        format!("{}\n", image.manifest.digest).as_bytes(),
    )?;
    let (parent, file) = data_path(&manifests, &image.manifest.digest)?;
    dir_all(&mut tar, &parent)?;
    tar.file(&file, 0o644, &image.manifest.data)?;
    let mut blob_list = vec![(image.config.digest.clone(), image.config.data.clone())];
    for (layer, _) in &image.layers {
        blob_list.push((layer.digest.clone(), layer.blob.clone()));
    }
    for (digest, data) in blob_list {
        let (parent, file) = data_path(&blobs, &digest)?;
        dir_all(&mut tar, &parent)?;
        tar.file(&file, 0o644, &data)?;
    }
    Layer::from_tar(&tar.finish()?, Compression::Gzip(1))
}

/// Upstream: Debian bookworm-slim with dnsutils, for glibc's resolver (`hostname -f`). Here
/// this Debian 12 host's own `/bin/sh`, `/bin/hostname` and glibc (which has the `files` and
/// `dns` NSS back ends built in) with its `/etc/nsswitch.conf`; no dnsutils.
fn glibc_dns_testing() -> Result<ImageBuild> {
    let mut tar = TarBuilder::new();
    for (dir, mode) in [
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        tar.dir(dir, mode)?;
    }
    let nsswitch = std::fs::read("/etc/nsswitch.conf").context("reading /etc/nsswitch.conf")?;
    tar.file("etc/nsswitch.conf", 0o644, &nsswitch)?;
    let mut spec = spec("glibc-dns-testing");
    spec.cmd = vec!["/bin/sh".into()];
    ImageBuild::new(
        Format::Oci,
        &spec,
        vec![
            Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?,
            host_programs_layer(&[("/bin/sh", "/bin/sh"), ("/bin/hostname", "/bin/hostname")])?,
        ],
    )
}

fn nonewprivs() -> Result<ImageBuild> {
    let mut tar = TarBuilder::new();
    tar.dir("usr", 0o755)?
        .dir("usr/local", 0o755)?
        .dir("usr/local/bin", 0o755)?
        .file_owned("usr/local/bin/nnp", 0o4755, 0, 0, &nnp_elf())?;
    let mut spec = spec("nonewprivs");
    spec.cmd = vec!["nnp".into()];
    ImageBuild::new(
        Format::Oci,
        &spec,
        vec![
            images::busybox_layer()?,
            Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?,
        ],
    )
}

fn pause_image(binary: &[u8]) -> Result<ImageBuild> {
    let mut tar = TarBuilder::new();
    tar.file("pause", 0o755, binary)?;
    let mut spec = spec("pause");
    spec.entrypoint = vec!["/pause".into()];
    spec.cmd = Vec::new();
    spec.env = Vec::new();
    ImageBuild::new(
        Format::Oci,
        &spec,
        vec![Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?],
    )
}
