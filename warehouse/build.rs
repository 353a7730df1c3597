//! Embeds every `models/**/*.sql` file, so adding a built-in model is adding a file.
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let models = root.join("models");
    println!("cargo:rerun-if-changed={}", models.display());
    let mut files = vec![];
    collect(&models, &mut files);
    files.sort();
    let mut code = String::from(
        "/// Built-in model files: (path relative to the crate, SQL).\npub static BUILTIN_MODELS: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        code.push_str(&format!("    ({rel:?}, include_str!({:?})),\n", f.display().to_string()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_models.rs");
    std::fs::write(out, code).unwrap();
}
