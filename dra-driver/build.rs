//! Generates the kubelet plugin registration API and the DRA plugin API
//! (v1, v1beta1) and its health API (v1alpha1) from `proto/` with protox (no `protoc` needed) and
//! tonic-prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(
        [
            "pluginregistration.proto",
            "dra_v1.proto",
            "dra_v1beta1.proto",
            "dra_health_v1alpha1.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
