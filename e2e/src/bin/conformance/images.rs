//! The images the NodeConformance specs run, built offline and pushed to the loopback registry,
//! plus the `--kube-test-repo-list` file that points `e2e.test` at them.
//!
//! `e2e.test` names its images `<registry key>/<name>:<version>`
//! (`test/utils/image/manifest.go`); the repo list replaces every registry key, so all of them
//! resolve to `127.0.0.1:<port>/…`. What is served, and from what:
//!
//! | upstream image | here |
//! | --- | --- |
//! | `e2e-test-images/agnhost:2.63.0` (and `2.55`, AgnhostPrev) | the `agnhost` binary from `K8S_BIN` (built from the same tree as `e2e.test`) as `/agnhost`, `/agnhost-2` linking to it, `ENTRYPOINT ["/agnhost"]`, `CMD ["pause"]`, `/uploads`, user `user-defined-in-image` (1000) in group `group-defined-in-image` (50000), as upstream's Dockerfile; on a busybox root instead of Alpine (no curl, bind-tools, iperf or coredns) |
//! | `e2e-test-images/busybox:1.37.0-1` | Debian's static busybox, applets as symlinks |
//! | `e2e-test-images/nonroot:1.5` | busybox root with `USER 1234` (upstream: debian-base with `USER 1234`) |
//! | `e2e-test-images/nonewprivs:1.4` | `/usr/local/bin/nnp`, setuid root, printing `Effective uid: <euid>` ([`crius_e2e::critest_images::nnp_elf`]; upstream: the same program in Go), `CMD ["nnp"]` |
//! | `pause:3.10.2` | crius' own built-in pause binary as `/pause`, `ENTRYPOINT ["/pause"]` |
//!
//! Not served (the specs that need them fail on the pull): `nginx`, `httpd`, `perl`,
//! `glibc-dns-testing`, `sample-apiserver`, `ipc-utils`, `volume/*`, `node-perf/*` and the
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
        let agnhost = agnhost(&agnhost_bin)?;
        Ok(vec![
            (format!("{E2E}/agnhost:2.63.0"), agnhost.clone()),
            (format!("{E2E}/agnhost:2.55"), agnhost),
            (format!("{E2E}/busybox:1.37.0-1"), busybox()?),
            (format!("{E2E}/nonroot:1.5"), nonroot()?),
            (format!("{E2E}/nonewprivs:1.4"), nonewprivs()?),
            ("pause:3.10.2".to_string(), pause_image(&pause_bin)?),
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

fn agnhost(binary: &[u8]) -> Result<ImageBuild> {
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
    let mut spec = spec("agnhost");
    spec.entrypoint = vec!["/agnhost".into()];
    spec.cmd = vec!["pause".into()];
    ImageBuild::new(
        Format::Oci,
        &spec,
        vec![
            images::busybox_layer()?,
            Layer::from_tar(&tar.finish()?, Compression::Gzip(1))?,
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
