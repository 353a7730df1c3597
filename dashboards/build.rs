//! rust-embed reads `assets/` and `definitions/` at compile time but tells cargo only about the
//! files that exist then (through `include_bytes!`); watching the folders makes a newly added
//! dashboard or script rebuild the crate too, so adding one needs no Rust change.

fn main() {
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=definitions");
}
