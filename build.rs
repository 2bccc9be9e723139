//! Generates the Rust types of Envoy's external authorization API (`proto/`, see its README)
//! with prost, for the gRPC `ext_authz` service. protoc comes from a crate, so a build needs
//! nothing installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.include_file("envoy_api.rs");
    config.compile_protos(
        &["proto/envoy/service/auth/v3/external_auth.proto"],
        &[std::path::PathBuf::from("proto"), well_known],
    )?;
    Ok(())
}
