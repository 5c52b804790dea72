//! Builds crius' pause process (`pause/pause.rs`): no std, no libc, static, straight with the
//! rustc that builds crius, for the daemon to embed (`sandbox/pause_bin.rs`). A separate
//! rustc run because the pause needs `panic=abort` and its own link flags, which a workspace
//! member could not have without imposing them on crius.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "pause/pause.rs";
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    if !target.starts_with("x86_64-") || !target.contains("linux") {
        panic!("the built-in pause is written for x86_64 Linux, not {target}");
    }
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--crate-name",
            "crius_pause",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "strip=symbols", "-C", "relocation-model=static"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-static"])
        .arg("-o")
        .arg(out.join("crius-pause"))
        .arg(source)
        .status()
        .expect("running rustc for the pause");
    assert!(status.success(), "building {source} failed");
    // `crius` itself is linked non-PIE: every runtime call execs it (`crius oci create` per
    // container, `crius oci exec` per exec probe), and a PIE of its size has the dynamic loader
    // apply ~42 000 relative relocations (and copy the pages they touch) at each start.
    println!("cargo:rustc-link-arg-bin=crius=-no-pie");
}
