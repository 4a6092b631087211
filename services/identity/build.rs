//! `sqlx::migrate!` embeds `migrations/` when this crate compiles, and Cargo
//! reruns it only when a file it already knows changes: without this, a new
//! migration would be left out of an incremental build (the build script
//! sqlx recommends).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
