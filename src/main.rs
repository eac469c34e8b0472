//! The `tern` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use tern::cli::{Cli, Command};
use tern::cmd;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match cli.resolved_command() {
        Command::Serve(args) => {
            // Loads the config, installs logging, resolves, generates a user if needed.
            let prepared = cmd::serve::prepare(cli, &args)?;
            cmd::serve::run(prepared)
        }
        // No logging: check-config prints its result and the error on stderr.
        Command::CheckConfig(args) => cmd::check_config::run(cli, &args),
        Command::Credential(args) => cmd::credential::run(&args),
        Command::Key(args) => cmd::credential::run_key(&args),
        #[cfg(feature = "tools")]
        Command::Load(args) => cmd::load::run(&args),
        #[cfg(feature = "tools")]
        Command::Probe(args) => cmd::probe::run(&args),
        Command::ImportCoturn(args) => cmd::import_coturn::run(&args),
        Command::Ctl(args) => cmd::ctl::run(cli, &args),
    }
}
