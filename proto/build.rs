//! Generates the wire types from `proto/tessera/v1/tessera.proto` at build time. protox parses the
//! file in Rust (no `protoc` on the machine), tonic-prost-build turns the descriptor set into prost
//! messages plus tonic clients and servers, written to `OUT_DIR/tessera.v1.rs`.

use std::error::Error;

const PROTO: &str = "proto/tessera/v1/tessera.proto";
const INCLUDE: &str = "proto";

fn main() -> Result<(), Box<dyn Error>> {
    // Without a file list cargo would rerun this script whenever anything in the package changes.
    println!("cargo:rerun-if-changed={PROTO}");
    println!("cargo:rerun-if-changed=build.rs");
    let fds = protox::compile([PROTO], [INCLUDE])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
