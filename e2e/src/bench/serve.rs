//! `pod-bench serve-images`: a loopback registry with the busybox test image and a pause image,
//! kept up until SIGINT or SIGTERM, for runtimes that `hack/bench.sh` starts itself.
//!
//! The pause image packs a given static executable (crius' own pause, `pause/pause.rs`: PID 1
//! of a pod, reaps, exits on SIGTERM) as `/pause`, its entrypoint. containerd's
//! `sandbox_image` points at it, so no public image is ever pulled.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::images::{self, ConfigSpec, Format, ImageBuild};
use crate::layer::{Compression, Layer, TarBuilder};
use crate::registry::{RegistryMode, TestRegistry};

/// Where the registry's address and the image references go, and what the pause image holds.
pub struct ServeOptions {
    pub out: PathBuf,
    pub pause_bin: PathBuf,
}

const USAGE: &str = "usage: pod-bench serve-images --out FILE --pause-bin PATH";

impl ServeOptions {
    pub fn parse(args: impl Iterator<Item = String>) -> Result<ServeOptions> {
        let (mut out, mut pause_bin) = (None, None);
        let mut args = args;
        while let Some(arg) = args.next() {
            let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
            match arg.as_str() {
                "--out" => out = Some(PathBuf::from(value("a path")?)),
                "--pause-bin" => pause_bin = Some(PathBuf::from(value("a path")?)),
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        match (out, pause_bin) {
            (Some(out), Some(pause_bin)) => Ok(ServeOptions { out, pause_bin }),
            _ => bail!("--out and --pause-bin are required\n{USAGE}"),
        }
    }
}

/// The pause image: one layer holding `/pause` (mode 0755), entrypoint `["/pause"]`.
pub fn pause_image(pause: &[u8]) -> Result<ImageBuild> {
    let mut tar = TarBuilder::new();
    tar.file("pause", 0o755, pause)?;
    let layer = Layer::from_tar(&tar.finish()?, Compression::Gzip(6))?;
    let mut spec = ConfigSpec::new("pause");
    spec.cmd = Vec::new();
    spec.entrypoint = vec!["/pause".to_string()];
    spec.env = Vec::new();
    ImageBuild::new(Format::Oci, &spec, vec![layer])
}

/// Starts the registry, pushes both images, writes `{"registry", "busybox", "pause"}` to
/// `out` (atomically: a reader polling for the file sees all of it) and serves until SIGINT
/// or SIGTERM; the registry is stopped and its storage removed on the way out.
pub async fn serve(options: &ServeOptions) -> Result<()> {
    let pause = std::fs::read(&options.pause_bin)
        .with_context(|| format!("reading {}", options.pause_bin.display()))?;
    let registry = TestRegistry::start(RegistryMode::Plain).await?;
    let busybox = images::push_single(&registry, "bench/busybox", "v1").await?;
    let pause = images::push_image(&registry, "bench/pause", "v1", &pause_image(&pause)?).await?;
    let answer = json!({
        "registry": registry.host(),
        "busybox": busybox.reference,
        "pause": pause.reference,
    });
    write_atomically(&options.out, &serde_json::to_vec_pretty(&answer)?)?;
    eprintln!("serve-images: {answer}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(registry);
    Ok(())
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_image_runs_slash_pause() {
        let image = pause_image(b"\x7fELF-not-really").unwrap();
        let config: serde_json::Value = serde_json::from_slice(&image.config.data).unwrap();
        assert_eq!(config["config"]["Entrypoint"], json!(["/pause"]));
        assert!(
            config["config"]
                .get("Cmd")
                .is_none_or(|c| c.as_array().is_some_and(|a| a.is_empty()))
        );
        assert_eq!(image.layers.len(), 1);
    }
}
