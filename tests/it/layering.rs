//! The sans-IO wall: `src/proto/` reads no clock, opens no socket or file,
//! reads no environment and uses no async runtime. Everything it needs comes
//! in as arguments (`Now`, bytes, addresses), so it is testable in virtual
//! time and fuzzable. It holds no shared state (no locks) and draws no
//! randomness from the OS: keys come in from the driver. Test code inside
//! `src/proto/` may use clocks.

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
    // No shared state: what spans shards (quotas, reserved ports) is the driver's.
    "Mutex",
    "RwLock",
    "std::sync::atomic",
    // No randomness of its own: keys and seeds are handed in.
    "RandomState",
    // `new()`/`with_capacity()` of std's maps seed SipHash from the OS; the
    // core's maps are `proto::hash::Map`, seeded from the shard key.
    "HashMap::new",
    "HashMap::with_capacity",
    "HashSet::new",
    "HashSet::with_capacity",
    "thread_rng",
    "rand::",
    "getrandom",
    "OsRng",
    "SystemRandom",
];

/// The non-test code of a file: up to an inline `#[cfg(test)] mod x {`
/// (which comes last); a `#[cfg(test)] mod x;` declaring a test file
/// elsewhere is skipped, not taken as the end of the code.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let next = lines.peek().map_or("", |l| l.trim());
            if next.starts_with("mod ") && next.ends_with(';') {
                lines.next();
                out.push_str("\n\n");
                continue;
            }
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

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
        let code = non_test_code(&text);
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

#[test]
fn test_modules_declared_up_front_do_not_hide_the_code_after_them() {
    let text = "mod a;\n#[cfg(test)]\nmod tests;\nuse std::sync::Mutex;\n#[cfg(test)]\nmod t {\n  Mutex\n}\n";
    let code = non_test_code(text);
    assert_eq!(code.matches("Mutex").count(), 1, "{code}");
}
