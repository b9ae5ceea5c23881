//! The `fhir-server` binary: parse settings, start logging, hand over to `app::run`.

use clap::Parser;
use fhir_server::config::{Cli, Command, DefinitionsCommand, LogFormat, ServeConfig};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Definitions {
            action: DefinitionsCommand::Generate { package, out },
        }) => {
            match fhir_server::definitions::generate(&package).and_then(|files| {
                fhir_server::definitions::write(&files, &out)?;
                Ok(files.len())
            }) {
                Ok(n) => {
                    println!("wrote {n} generated file(s) under {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("definitions generate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Serve(config)) => serve(config),
        None => serve(cli.serve),
    }
}

fn serve(config: ServeConfig) -> ExitCode {
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fhir_server::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &ServeConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
