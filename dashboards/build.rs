//! Embeds every file under `assets/` and every `definitions/*.toml` into the library, so adding a
//! dashboard or a script needs no Rust: drop the file in and rebuild.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let assets = root.join("assets");
    let definitions = root.join("definitions");
    println!("cargo:rerun-if-changed={}", assets.display());
    println!("cargo:rerun-if-changed={}", definitions.display());

    let mut code = String::from("/// Every file under `assets/`: path relative to it, contents.\n");
    code.push_str("pub(crate) static ASSETS: &[(&str, &[u8])] = &[\n");
    let mut list = vec![];
    files(&assets, &mut list);
    list.sort();
    for path in &list {
        let rel = path.strip_prefix(&assets).expect("under assets/").to_string_lossy().replace('\\', "/");
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({:?})),", path.display().to_string());
    }
    code.push_str("];\n\n/// Every `definitions/*.toml`: file stem, text.\n");
    code.push_str("pub(crate) static DEFINITIONS: &[(&str, &str)] = &[\n");
    let mut list = vec![];
    files(&definitions, &mut list);
    list.sort();
    for path in list.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let stem = path.file_stem().expect("a file name").to_string_lossy();
        let _ = writeln!(code, "    ({stem:?}, include_str!({:?})),", path.display().to_string());
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
