//! Compiles `proto/runtime/v1/api.proto` into the CRI messages, server traits and clients.
//!
//! prost-build runs `protoc`: it must be on `PATH` or named by `PROTOC` (Debian package
//! `protobuf-compiler`, installed by `hack/install-deps.sh`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    tonic_prost_build::configure().compile_protos(&[PROTO], &["proto/runtime/v1"])?;
    Ok(())
}
