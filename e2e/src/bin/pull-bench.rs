//! Pull benchmark: pushes the ~200 MiB, 5-layer test image to a loopback registry and times
//! crius pulling it cold (fresh root) and warm (already present: the no-op path), with
//! `max_concurrent_downloads` 1 and 3.
//!
//! ```text
//! cargo build --release --bin crius
//! cargo run --release -p crius-e2e --bin pull-bench -- [--repeat N] [--bin PATH]
//! ```
//!
//! The daemon binary is `--bin`, else `$CRIUS_BIN`, else `target/release/crius` when it exists,
//! else `target/debug/crius`. Everything stays on 127.0.0.1.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use crius_e2e::Crius;
use crius_e2e::images;
use crius_e2e::registry::{RegistryMode, TestRegistry};
use crius_e2e::util::workspace_root;

struct Options {
    repeat: usize,
    bin: PathBuf,
}

fn parse_args() -> Result<Options> {
    let mut repeat = 1;
    let mut bin = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => {
                repeat = args
                    .next()
                    .context("--repeat needs a number")?
                    .parse()
                    .context("--repeat needs a number")?;
            }
            "--bin" => bin = Some(PathBuf::from(args.next().context("--bin needs a path")?)),
            "-h" | "--help" => {
                println!("usage: pull-bench [--repeat N] [--bin PATH-TO-CRIUS]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let bin = bin
        .or_else(|| std::env::var_os("CRIUS_BIN").map(PathBuf::from))
        .unwrap_or_else(|| {
            let release = workspace_root().join("target/release/crius");
            if release.exists() {
                release
            } else {
                workspace_root().join("target/debug/crius")
            }
        });
    if !bin.exists() {
        bail!(
            "{} does not exist: cargo build --release --bin crius",
            bin.display()
        );
    }
    Ok(Options {
        repeat: repeat.max(1),
        bin,
    })
}

struct Sample {
    case: String,
    seconds: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = parse_args()?;
    eprintln!("building (or loading the cached) big image...");
    let registry = TestRegistry::start(RegistryMode::Plain).await?;
    let pushed = images::push_big(&registry, "bench/big", "v1").await?;
    let megabytes = pushed.size as f64 / 1e6;
    println!(
        "crius pull benchmark: {} layers, {megabytes:.1} MB, daemon {}",
        pushed.layer_digests.len(),
        options.bin.display()
    );

    let mut samples = Vec::new();
    for concurrency in [1u32, 3] {
        for run in 0..options.repeat {
            let mut crius = Crius::builder()
                .bin(&options.bin)
                .log_level("info")
                .insecure(&registry.host())
                .max_concurrent_downloads(concurrency)
                .start()
                .await?;
            let mut client = crius.images().await?;
            for phase in ["cold", "warm"] {
                let started = Instant::now();
                client.pull(&pushed.reference).await.with_context(|| {
                    format!("{phase} pull (max_concurrent_downloads = {concurrency})")
                })?;
                let seconds = started.elapsed().as_secs_f64();
                let case = format!(
                    "{phase} max_concurrent_downloads={concurrency} run={}",
                    run + 1
                );
                eprintln!("{case}: {seconds:.3} s");
                samples.push(Sample { case, seconds });
            }
            crius.stop().await?;
        }
    }

    println!("{:<48} {:>10} {:>10}", "case", "seconds", "MB/s");
    for sample in &samples {
        println!(
            "{:<48} {:>10.3} {:>10.1}",
            sample.case,
            sample.seconds,
            megabytes / sample.seconds.max(1e-9)
        );
    }
    Ok(())
}
