//! Stand-ins for the images cri-tools' `critest` pulls, built offline from Debian's static
//! busybox and pushed to one loopback registry under `<upstream>/<original path>`, so that a
//! crius with the mirrors of [`configure`] pulls `registry.k8s.io/...`, `k8s.gcr.io/...` and
//! `gcr.io/...` from it while keeping the original names.
//!
//! What critest checks (cri-tools `pkg/validate`, `pkg/framework`) and how each stand-in meets it:
//!
//! | image | critest needs | stand-in |
//! | --- | --- | --- |
//! | `registry.k8s.io/e2e-test-images/busybox:1.29-2` | `sh`, `top`, `sleep`, `echo`, `id`, `ls`, `pgrep`, `pidof`, `netstat`, `hostname`, `ping`, `brctl`, `mount`, `touch`, `seq`, `ipcs -m`; user `nobody`; `/etc/passwd` (image volumes, subPath `etc`); masking `/bin/ls` leaves `sh` working | busybox with its applets as hard links (as upstream) + upstream-like `/etc/passwd`/`/etc/group` + `ipcs` and `pgrep` scripts (Debian's busybox has neither applet) |
//! | `registry.k8s.io/e2e-test-images/nginx:1.14-2` | HTTP 200 on port 80; `/var/run/nginx.pid` holding its pid; a process named `nginx` (`pidof nginx`, HostPID); `/proc/1/cmdline` containing `master process` in its own pid namespace | `/usr/sbin/nginx`, a script that re-execs itself with `master process` in its arguments, writes its pid and runs `busybox httpd -f -p 80` on `/usr/share/nginx/html` |
//! | `registry.k8s.io/e2e-test-images/httpd:2.4.39-4` | HTTP 200 on port 80; `httpd` in its log; `echo` for exec | `httpd-foreground` script: logs a line with `httpd`, runs `busybox httpd -f -p 80` |
//! | `registry.k8s.io/e2e-test-images/nonewprivs:1.3` | run as uid 1000, its entrypoint prints `Effective uid: <euid>\n`: 0 when privilege escalation is allowed (setuid root binary), 1000 with `no_new_privs` | `/usr/local/bin/nnp`: a 228-byte static x86_64 ELF ([`nnp_elf`]), root-owned mode 04755, `USER 1000` (x86_64 only) |
//! | `registry.k8s.io/pause:3.9`, `k8s.gcr.io/pause:3.9` | pulled and removed only; both names must land on one image id | the same build pushed to both paths |
//! | `gcr.io/k8s-staging-cri-tools/test-image-{1,2,3,latest}:latest`, `test-image-tag:{test,all}` | distinct images; `test-image-tag:test` is busybox based (image volumes run `/bin/ls`, `/bin/sh`, `/etc/passwd`) | busybox + a marker file `/<name>` each, like upstream's `ADD ${TEST} ${TEST}`; OCI index with the host platform |
//! | `gcr.io/k8s-staging-cri-tools/test-image-tags:{1,2,3}` | three tags of one image | one build, three tags |
//! | `gcr.io/k8s-staging-cri-tools/test-image-user-*` | `USER` `1002`, `www-data`, `1003:1004`, `www-data:1004`: ImageStatus uid/username | busybox with that `User` (`www-data` is uid 33 in `/etc/passwd`) |
//! | `gcr.io/k8s-staging-cri-tools/test-image-predefined-group` | `USER 1000`, user `default-user` (1000:1000) member of `group-defined-in-image` (50000) | `/etc/passwd` and `/etc/group` carry both |
//! | `gcr.io/k8s-staging-cri-tools/hostnet-nginx-<arch>:latest` | nginx on port 12003 (host-network port forwarding, Streaming) | the nginx stand-in on port 12003 |
//! | `gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2...` | a byte-exact copy of upstream (digest is hard-coded) | **none**: cannot be rebuilt, so `public image with digest` fails |

use std::sync::OnceLock;

use anyhow::{Context, Result};

use crate::daemon::CriusBuilder;
use crate::images::{self, ConfigSpec, Format, ImageBuild, IndexBuild};
use crate::layer::{Compression, Layer, TarBuilder};
use crate::registry::TestRegistry;
use crate::util::host_arch;

/// The upstream registries critest pulls from; each is mirrored to `<local>/<upstream>`.
pub const UPSTREAMS: [&str; 3] = ["registry.k8s.io", "k8s.gcr.io", "gcr.io"];

/// The image critest cannot have offline (its digest is fixed upstream).
pub const DIGEST_IMAGE: &str = "gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf";

const E2E: &str = "e2e-test-images";
const STAGING: &str = "k8s-staging-cri-tools";

/// Label naming the stand-in in every image config.
pub const STAND_IN_LABEL: &str = "org.crius.e2e.critest-stand-in";

/// One stand-in: pushed as `<registry>/<upstream>/<repo>:<tag>` for every tag.
#[derive(Debug, Clone)]
pub struct StandIn {
    pub upstream: &'static str,
    pub repo: String,
    pub tags: Vec<String>,
    pub image: ImageBuild,
    /// Pushed under an OCI index (host platform only), as upstream publishes multi-arch lists.
    pub as_index: bool,
}

impl StandIn {
    /// The names critest uses: `<upstream>/<repo>:<tag>`.
    pub fn references(&self) -> Vec<String> {
        self.tags
            .iter()
            .map(|tag| format!("{}/{}:{tag}", self.upstream, self.repo))
            .collect()
    }
}

/// The mirror entry for `upstream`: `<registry host>/<upstream>`.
pub fn mirror_for(registry: &TestRegistry, upstream: &str) -> String {
    format!("{}/{upstream}", registry.host())
}

/// Plain HTTP for the local registry and a mirror on it for each of [`UPSTREAMS`].
pub fn configure(mut builder: CriusBuilder, registry: &TestRegistry) -> CriusBuilder {
    builder = builder.insecure(&registry.host());
    for upstream in UPSTREAMS {
        builder = builder.mirror(upstream, &mirror_for(registry, upstream));
    }
    builder
}

/// Builds every stand-in.
pub fn stand_ins() -> Result<Vec<StandIn>> {
    let e2e = |repo: &str, tag: &str, image: ImageBuild| StandIn {
        upstream: "registry.k8s.io",
        repo: format!("{E2E}/{repo}"),
        tags: vec![tag.to_string()],
        image,
        as_index: false,
    };
    let staging = |repo: &str, tags: &[&str], image: ImageBuild| StandIn {
        upstream: "gcr.io",
        repo: format!("{STAGING}/{repo}"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        image,
        as_index: true,
    };

    let mut all = vec![
        e2e(
            "busybox",
            "1.29-2",
            build("busybox", &spec("busybox"), Vec::new())?,
        ),
        e2e("nginx", "1.14-2", nginx(80)?),
        e2e("httpd", "2.4.39-4", httpd()?),
    ];
    if host_arch() == "amd64" {
        all.push(e2e("nonewprivs", "1.3", nonewprivs()?));
    }
    let pause = pause()?;
    all.push(StandIn {
        upstream: "registry.k8s.io",
        repo: "pause".to_string(),
        tags: vec!["3.9".to_string()],
        image: pause.clone(),
        as_index: false,
    });
    all.push(StandIn {
        upstream: "k8s.gcr.io",
        repo: "pause".to_string(),
        tags: vec!["3.9".to_string()],
        image: pause,
        as_index: false,
    });

    for name in [
        "test-image-1",
        "test-image-2",
        "test-image-3",
        "test-image-latest",
    ] {
        all.push(staging(name, &["latest"], marked(name)?));
    }
    for tag in ["test", "all"] {
        all.push(staging("test-image-tag", &[tag], marked(tag)?));
    }
    all.push(staging(
        "test-image-tags",
        &["1", "2", "3"],
        marked("same-image")?,
    ));
    for (repo, user) in [
        ("test-image-user-uid", "1002"),
        ("test-image-user-username", "www-data"),
        ("test-image-user-uid-group", "1003:1004"),
        ("test-image-user-username-group", "www-data:1004"),
    ] {
        all.push(staging(
            repo,
            &["latest"],
            build(repo, &spec(repo).user(user), Vec::new())?,
        ));
    }
    all.push(staging(
        "test-image-predefined-group",
        &["latest"],
        predefined_group()?,
    ));
    all.push(staging(
        &format!("hostnet-nginx-{}", host_arch()),
        &["latest"],
        nginx(12003)?,
    ));
    Ok(all)
}

/// Builds and pushes every stand-in; returns the names critest will use.
pub async fn push_all(registry: &TestRegistry) -> Result<Vec<String>> {
    let all = tokio::task::spawn_blocking(stand_ins)
        .await
        .context("stand-in builder panicked")??;
    let mut names = Vec::new();
    for stand_in in &all {
        let repo = format!("{}/{}", stand_in.upstream, stand_in.repo);
        let index = if stand_in.as_index {
            Some(IndexBuild::new(Format::Oci, vec![stand_in.image.clone()])?)
        } else {
            None
        };
        for tag in &stand_in.tags {
            match &index {
                Some(index) => {
                    images::push_index(registry, &repo, tag, index).await?;
                }
                None => {
                    images::push_image(registry, &repo, tag, &stand_in.image).await?;
                }
            }
        }
        names.extend(stand_in.references());
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// Contents

/// Like busybox's own image: system users and groups, `www-data` = 33, `nobody` = 65534; no
/// group lists members, so image groups never add to a user's supplementary groups by accident.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
";

const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
mail:x:8:
wheel:x:10:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
";

/// `pgrep PATTERN`: pids whose process name matches the extended regular expression.
const PGREP: &str = r#"#!/bin/sh
# crius-e2e stand-in: Debian's busybox-static has no pgrep applet. `pgrep PATTERN` only.
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
status=1
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" = "$$" ] && continue
  read -r comm < "$dir/comm" 2>/dev/null || continue
  if echo "$comm" | grep -qE -- "$1"; then echo "$pid"; status=0; fi
done
exit $status
"#;

/// `ipcs -m` from `/proc/sysvipc/shm` (the IPC namespace of the reader), in util-linux's layout.
const IPCS: &str = r#"#!/bin/sh
# crius-e2e stand-in: Debian's busybox-static has no ipcs applet. Shared memory only.
echo
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch     status"
while read -r key shmid perms size cpid lpid nattch uid rest; do
  [ "$key" = key ] && continue
  printf '0x%08x %-10s %-10s %-10s %-10s %-10s\n' "$key" "$shmid" "$uid" "$perms" "$size" "$nattch"
done < /proc/sysvipc/shm
"#;

fn spec(name: &str) -> ConfigSpec {
    ConfigSpec::new("critest").label(STAND_IN_LABEL, name)
}

/// The busybox root, then a layer with the critest `/etc` files, `ipcs` and `pgrep`, then
/// `extra`.
fn build(name: &str, spec: &ConfigSpec, extra: Vec<Layer>) -> Result<ImageBuild> {
    let mut layers = vec![busybox_root()?, base_layer(PASSWD, GROUP)?];
    layers.extend(extra);
    ImageBuild::new(Format::Oci, spec, layers).with_context(|| format!("building {name}"))
}

/// Like upstream's busybox image, every applet in `/bin` is a hard link to `/bin/busybox`, not
/// a symlink: critest masks `/bin/ls` (MaskedPaths) and expects `sh` to keep working, which a
/// symlink would defeat (the mount follows it onto busybox itself). Built once per process.
fn busybox_root() -> Result<Layer> {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    if let Some(layer) = LAYER.get() {
        return Ok(layer.clone());
    }
    let path = images::busybox_path();
    let binary = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let list = std::process::Command::new(&path)
        .arg("--list")
        .output()
        .with_context(|| format!("running {} --list", path.display()))?;
    let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect();
    applets.sort();
    applets.dedup();
    let mut tar = TarBuilder::new();
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("var", 0o755),
    ] {
        tar.dir(dir, mode)?;
    }
    tar.file("bin/busybox", 0o755, &binary)?;
    for applet in &applets {
        tar.hardlink(&format!("bin/{applet}"), "bin/busybox")?;
    }
    let layer = Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?;
    Ok(LAYER.get_or_init(|| layer).clone())
}

fn base_layer(passwd: &str, group: &str) -> Result<Layer> {
    let mut tar = TarBuilder::new();
    tar.dir("etc", 0o755)?
        .file("etc/passwd", 0o644, passwd.as_bytes())?
        .file("etc/group", 0o644, group.as_bytes())?
        .dir("usr", 0o755)?
        .dir("usr/bin", 0o755)?
        .file("usr/bin/ipcs", 0o755, IPCS.as_bytes())?
        .file("usr/bin/pgrep", 0o755, PGREP.as_bytes())?
        .dir("var", 0o755)?
        .dir("var/run", 0o755)?;
    Layer::from_tar(&tar.finish()?, Compression::Gzip(6))
}

/// busybox plus the file `/<marker>`, as upstream's `image-test` Dockerfile does.
fn marked(marker: &str) -> Result<ImageBuild> {
    build(
        marker,
        &spec(marker),
        vec![images::marker_layer(
            &format!("/{marker}"),
            b"",
            Compression::Gzip(6),
        )?],
    )
}

/// The nginx stand-in: see the module table. `port` is 80, or 12003 for hostnet-nginx.
fn nginx(port: u16) -> Result<ImageBuild> {
    let script = format!(
        r#"#!/bin/sh
# crius-e2e stand-in for nginx: busybox httpd on port {port}. Re-execs itself so that its
# command line reads like nginx's master process (critest greps /proc/1/cmdline for it); the
# process name stays "nginx" (pidof nginx).
case "$1" in
"master process") ;;
*) exec /usr/sbin/nginx "master process" nginx "$@" ;;
esac
echo $$ > /var/run/nginx.pid
httpd -f -p {port} -h /usr/share/nginx/html &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT QUIT
echo "nginx stand-in: busybox httpd (pid $child) on port {port}"
wait $child
"#
    );
    let mut tar = TarBuilder::new();
    tar.dir("usr", 0o755)?
        .dir("usr/sbin", 0o755)?
        .file("usr/sbin/nginx", 0o755, script.as_bytes())?
        .dir("usr/share", 0o755)?
        .dir("usr/share/nginx", 0o755)?
        .dir("usr/share/nginx/html", 0o755)?
        .file(
            "usr/share/nginx/html/index.html",
            0o644,
            b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n",
        )?;
    let mut spec = spec("nginx");
    spec.cmd = vec!["nginx".into(), "-g".into(), "daemon off;".into()];
    build(
        "nginx",
        &spec,
        vec![Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?],
    )
}

fn httpd() -> Result<ImageBuild> {
    let script = r#"#!/bin/sh
# crius-e2e stand-in for httpd: busybox httpd on port 80.
httpd -f -p 80 -h /usr/local/apache2/htdocs &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT QUIT WINCH
echo "httpd stand-in: busybox httpd (pid $child) on port 80"
wait $child
"#;
    let mut tar = TarBuilder::new();
    tar.dir("usr", 0o755)?
        .dir("usr/local", 0o755)?
        .dir("usr/local/bin", 0o755)?
        .file("usr/local/bin/httpd-foreground", 0o755, script.as_bytes())?
        .dir("usr/local/apache2", 0o755)?
        .dir("usr/local/apache2/htdocs", 0o755)?
        .file(
            "usr/local/apache2/htdocs/index.html",
            0o644,
            b"<html><body><h1>It works!</h1></body></html>\n",
        )?;
    let mut spec = spec("httpd");
    spec.cmd = vec!["httpd-foreground".into()];
    spec.working_dir = "/usr/local/apache2".into();
    build(
        "httpd",
        &spec,
        vec![Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?],
    )
}

fn nonewprivs() -> Result<ImageBuild> {
    let mut tar = TarBuilder::new();
    tar.dir("usr", 0o755)?
        .dir("usr/local", 0o755)?
        .dir("usr/local/bin", 0o755)?
        .file_owned("usr/local/bin/nnp", 0o4755, 0, 0, &nnp_elf())?;
    let mut spec = spec("nonewprivs").user("1000");
    spec.cmd = Vec::new();
    spec.entrypoint = vec!["/usr/local/bin/nnp".into()];
    build(
        "nonewprivs",
        &spec,
        vec![Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?],
    )
}

fn pause() -> Result<ImageBuild> {
    let mut spec = spec("pause");
    spec.cmd = Vec::new();
    spec.entrypoint = vec![
        "/bin/sh".into(),
        "-c".into(),
        "trap 'exit 0' TERM INT; sleep 2147483647 & wait".into(),
    ];
    build("pause", &spec, Vec::new())
}

fn predefined_group() -> Result<ImageBuild> {
    let passwd = format!("{PASSWD}default-user:x:1000:1000::/home/default-user:/bin/sh\n");
    let group =
        format!("{GROUP}default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n");
    let mut tar = TarBuilder::new();
    tar.dir("home", 0o755)?
        .dir_owned("home/default-user", 0o755, 1000, 1000)?;
    let layers = vec![
        busybox_root()?,
        base_layer(&passwd, &group)?,
        Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?,
    ];
    let spec = spec("test-image-predefined-group").user("1000");
    ImageBuild::new(Format::Oci, &spec, layers)
}

/// Machine code of the nonewprivs program (x86_64): prints `Effective uid: <geteuid()>\n` to
/// stdout and exits 0. Assembled with GNU as from:
///
/// ```text
///     mov eax, 107            # geteuid
///     syscall
///     sub rsp, 64
///     lea rsi, [rsp+63]
///     mov byte ptr [rsi], 10  # '\n'
///     mov ecx, 10
/// 1:  xor edx, edx            # digits, right to left
///     div ecx
///     add dl, 48
///     dec rsi
///     mov [rsi], dl
///     test eax, eax
///     jnz 1b
///     lea rdi, [rip + prefix_end]
///     mov ecx, 15
/// 2:  dec rdi                 # the prefix in front of them
///     dec rsi
///     mov al, [rdi]
///     mov [rsi], al
///     loop 2b
///     lea rdx, [rsp+64]
///     sub rdx, rsi
///     mov edi, 1
///     mov eax, 1              # write(1, rsi, rdx)
///     syscall
///     xor edi, edi
///     mov eax, 60             # exit(0)
///     syscall
/// prefix: .ascii "Effective uid: "
/// prefix_end:
/// ```
const NNP_CODE: [u8; 108] = [
    0xb8, 0x6b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x83, 0xec, 0x40, 0x48, 0x8d, 0x74, 0x24, 0x3f,
    0xc6, 0x06, 0x0a, 0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xd2, 0xf7, 0xf1, 0x80, 0xc2, 0x30, 0x48,
    0xff, 0xce, 0x88, 0x16, 0x85, 0xc0, 0x75, 0xf0, 0x48, 0x8d, 0x3d, 0x3d, 0x00, 0x00, 0x00, 0xb9,
    0x0f, 0x00, 0x00, 0x00, 0x48, 0xff, 0xcf, 0x48, 0xff, 0xce, 0x8a, 0x07, 0x88, 0x06, 0xe2, 0xf4,
    0x48, 0x8d, 0x54, 0x24, 0x40, 0x48, 0x29, 0xf2, 0xbf, 0x01, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00,
    0x00, 0x00, 0x0f, 0x05, 0x31, 0xff, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x45, 0x66, 0x66,
    0x65, 0x63, 0x74, 0x69, 0x76, 0x65, 0x20, 0x75, 0x69, 0x64, 0x3a, 0x20,
];

/// A static x86_64 ELF executable running [`NNP_CODE`]: ELF header, one program header
/// loading the whole file read+execute at 0x400000, then the code.
pub fn nnp_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let size = HEADERS + NNP_CODE.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    for v in [0u64, BASE, BASE, size, size, 0x1000] {
        // offset, vaddr, paddr, filesz, memsz, align
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&NNP_CODE);
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnp_prints_the_effective_uid() {
        if host_arch() != "amd64" {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nnp");
        std::fs::write(&path, nnp_elf()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&path).output().unwrap();
        assert!(out.status.success());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .unwrap()
            .to_string();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("Effective uid: {euid}\n")
        );
    }

    #[test]
    fn stand_ins_cover_the_critest_names() {
        let all = stand_ins().unwrap();
        let names: Vec<String> = all.iter().flat_map(StandIn::references).collect();
        for expected in [
            "registry.k8s.io/e2e-test-images/busybox:1.29-2",
            "registry.k8s.io/e2e-test-images/nginx:1.14-2",
            "registry.k8s.io/e2e-test-images/httpd:2.4.39-4",
            "registry.k8s.io/pause:3.9",
            "k8s.gcr.io/pause:3.9",
            "gcr.io/k8s-staging-cri-tools/test-image-tag:test",
            "gcr.io/k8s-staging-cri-tools/test-image-tag:all",
            "gcr.io/k8s-staging-cri-tools/test-image-tags:3",
            "gcr.io/k8s-staging-cri-tools/test-image-latest:latest",
            "gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let id = |name: &str| {
            all.iter()
                .find(|s| s.references().iter().any(|r| r == name))
                .map(|s| s.image.config.digest.clone())
                .unwrap()
        };
        assert_eq!(id("registry.k8s.io/pause:3.9"), id("k8s.gcr.io/pause:3.9"));
        assert_ne!(
            id("gcr.io/k8s-staging-cri-tools/test-image-1:latest"),
            id("gcr.io/k8s-staging-cri-tools/test-image-2:latest")
        );
    }
}
