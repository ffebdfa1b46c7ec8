//! Generates the kubelet device plugin API (v1beta1) from the vendored
//! `proto/api.proto` with protox (a pure-Rust protobuf compiler, so no
//! `protoc` is needed) and tonic-prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let fds = protox::compile(["api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
