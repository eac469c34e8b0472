//! The sans-IO wall: `src/proto/` reads no clock, opens no socket or file,
//! reads no environment and uses no async runtime. Everything it needs comes
//! in as arguments (`Now`, bytes, addresses), so it is testable in virtual
//! time and fuzzable. Test code inside `src/proto/` may use clocks.

use std::fs;
use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "tokio",
    "mio::",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "std::fs",
    "std::env",
    "std::thread",
    "crate::io",
    "crate::config",
    "println!",
    "tracing::",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Test-only modules (src/proto/turn/tests/ and the like).
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn proto_is_sans_io() {
    let mut files = Vec::new();
    rust_files(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/proto")),
        &mut files,
    );
    assert!(files.len() > 10, "found only {files:?}");
    let mut violations = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        // Inline unit tests come last in a file, after `#[cfg(test)]`.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if line.contains(word) {
                    violations.push(format!(
                        "{}:{}: `{word}` in: {}",
                        f.display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "src/proto must stay sans-IO:\n{}",
        violations.join("\n")
    );
}
