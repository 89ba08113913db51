//! Embeds the console's files (`console/`, flat) in the crate: writes a table of
//! `(name, bytes)` with `include_bytes!`, so the binaries carry the console and a change
//! to any of its files rebuilds them.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not baked in with env!: a build script binary can be reused
    // for a checkout at another path.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let dir = Path::new(&manifest).join("console");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .expect("the console's directory is readable");
    names.sort();
    let mut out = String::from("/// The console's files, by name.\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for name in &names {
        let path = dir.join(name);
        writeln!(out, "    ({name:?}, include_bytes!({:?})),", path.display().to_string()).expect("writing to a String");
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("console_assets.rs");
    std::fs::write(target, out).expect("writing the console's asset table");
}
