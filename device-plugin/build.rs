//! Generates, with protox (a pure-Rust protobuf compiler, so no `protoc`
//! is needed) and tonic-prost-build:
//! - the kubelet device plugin API (v1beta1) from the vendored
//!   `proto/api.proto` (server and client);
//! - the kubelet PodResources API (v1) from
//!   `proto/podresources/v1/api.proto`, upstream's file unchanged
//!   (k8s.io/kubelet v0.34.4 `pkg/apis/podresources/v1/api.proto`; it has
//!   no gogoproto options): the client, and a server for the tests' fake
//!   kubelet.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    println!("cargo:rerun-if-changed=proto/podresources/v1/api.proto");
    let fds = protox::compile(["api.proto", "podresources/v1/api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
