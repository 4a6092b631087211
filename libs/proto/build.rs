//! Compiles every `.proto` under the workspace's `proto/` folder.
//!
//! protoc comes from `protoc-bin-vendored` so a fresh machine needs no system
//! protoc and every machine generates identical code; `PROTOC` still wins when
//! set, for platforms the vendored crate does not cover.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut proto_files = Vec::new();
    collect_protos(&proto_root, &mut proto_files)?;
    proto_files.sort();
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for proto_file in &proto_files {
        println!("cargo:rerun-if-changed={}", proto_file.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");

    let mut prost_config = tonic_prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(system_protoc) => prost_config.protoc_executable(system_protoc),
        None => prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("mcr_descriptor.bin"))
        // RPCs that a later issue implements answer UNIMPLEMENTED until then.
        .generate_default_stubs(true)
        .compile_with_config(prost_config, &proto_files, &[proto_root])?;
    Ok(())
}

fn collect_protos(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    Ok(())
}
