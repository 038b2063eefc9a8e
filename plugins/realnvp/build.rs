//! The `peer_steps` bench links three plugin crates as rlibs, each exporting the plugin header
//! symbol that the host looks up in a loaded library; in that one binary the duplicates are
//! harmless (nothing looks them up), so the bench link accepts them.
fn main() {
    println!("cargo:rustc-link-arg-benches=-Wl,--allow-multiple-definition");
}
