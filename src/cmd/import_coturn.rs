//! `tern import-coturn turnserver.conf [-o tern.toml]`: the TOML goes to
//! stdout or the file, the report of options not carried over to stderr,
//! one line each (`FILE:LINE: KEY: why`). Exit 0 when the file was
//! converted, whatever the report says; non-zero only when it cannot be
//! read or the output cannot be written.

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::ImportCoturnArgs;
use crate::config::coturn;

pub fn run(args: &ImportCoturnArgs) -> anyhow::Result<()> {
    let source = args.input.display().to_string();
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read the coturn config {source}"))?;
    let imported = coturn::import(&text, &source);
    match &args.output {
        Some(path) => write_private(path, &imported.toml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(imported.toml.as_bytes())?,
    }
    let mut err = std::io::stderr().lock();
    for s in &imported.skipped {
        writeln!(err, "{source}:{}: {}: {}", s.line, s.key, s.why)?;
    }
    let target = args
        .output
        .as_ref()
        .map_or_else(|| "FILE".to_owned(), |p| p.display().to_string());
    writeln!(
        err,
        "{} coturn option(s) not carried over; check the result with \
         `tern check-config --config {target}`",
        imported.skipped.len()
    )?;
    Ok(())
}

/// Creates (or truncates) `path` readable by its owner only: the output may
/// hold passwords, keys and REST secrets.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}
