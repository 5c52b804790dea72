//! Links `crius-monitor` statically and non-PIE against glibc, so an idle monitor maps no shared
//! libraries and applies no relocations at start (docs/monitor.md, "Footprint"): only the pages of
//! the code it runs are resident, and none of its read-only data is copied on write.
//!
//! Cargo has no stable per-package way to turn on `crt-static`, and rustc, linking dynamically,
//! names the system libraries after a `-Bdynamic` (`-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`).
//! So the binary's link gets `-static -no-pie` (static start files, no dynamic loader) and a
//! search directory, ahead of the system ones, in which each of those names is a linker script
//! standing for the static archive (`libgcc_s.so` for `libgcc_eh.a` and `libgcc.a`, the
//! unwinder rustc's `crt-static` uses as well). Only the `crius-monitor` binary is linked this
//! way; its tests and every other package are not. Where the static archives are missing
//! (`libc6-dev` without `libc.a`) the monitor is linked dynamically as before, with a warning.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each library rustc's std names, and the static archives that stand for it.
const LIBS: &[(&str, &[&str])] = &[
    ("gcc_s", &["libgcc_eh.a", "libgcc.a"]),
    ("util", &["libutil.a"]),
    ("rt", &["librt.a"]),
    ("pthread", &["libpthread.a"]),
    ("m", &["libm.a"]),
    ("dl", &["libdl.a"]),
    ("c", &["libc.a"]),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let abi = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if os != "linux" || abi != "gnu" || features.split(',').any(|f| f == "crt-static") {
        return;
    }
    let Some(out) = env::var_os("OUT_DIR") else {
        return;
    };
    let dir = PathBuf::from(out).join("static-libs");
    match write_scripts(&dir) {
        Ok(()) => {
            println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
            println!("cargo:rustc-link-arg-bins=-static");
            println!("cargo:rustc-link-arg-bins=-no-pie");
            // The loop's code together (link/hot.ld); the monitor works the same without it.
            if let Some(dir) = env::var_os("CARGO_MANIFEST_DIR") {
                let script = PathBuf::from(dir).join("link/hot.ld");
                println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
            }
            println!("cargo:rerun-if-changed=link/hot.ld");
        }
        Err(why) => {
            println!("cargo:warning=crius-monitor is linked dynamically: {why}");
        }
    }
}

/// Writes `lib<name>.so` in `dir` for each of [`LIBS`]: `INPUT(<archives>)`.
fn write_scripts(dir: &Path) -> Result<(), String> {
    let linker = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, archives) in LIBS {
        let mut paths = Vec::new();
        for archive in *archives {
            paths.push(archive_path(&linker, archive)?);
        }
        let script = format!("INPUT({})\n", paths.join(" "));
        let file = dir.join(format!("lib{name}.so"));
        fs::write(&file, script).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// Where the C compiler finds `archive`; an error when it does not.
fn archive_path(linker: &str, archive: &str) -> Result<String, String> {
    let output = Command::new(linker)
        .arg(format!("-print-file-name={archive}"))
        .output()
        .map_err(|e| format!("{linker} -print-file-name: {e}"))?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // Not found, the compiler prints the bare name back.
    if !output.status.success() || !Path::new(&path).is_absolute() || !Path::new(&path).exists() {
        return Err(format!("{linker} does not find {archive}"));
    }
    if path.contains([' ', '(', ')', '"']) {
        return Err(format!(
            "{archive} is at a path a linker script cannot name: {path}"
        ));
    }
    Ok(path)
}
