//! The `fhir-server` binary: parse settings, start logging, hand over to `app::run` (or to
//! `generate::run` for the `generate` command).

use clap::Parser;
use fhir_server::config::{Cli, Command, DefinitionsCommand, GenerateConfig, LogFormat, ServeConfig};
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
        Some(Command::Generate(config)) => generate(config),
        Some(Command::Serve(config)) => serve(*config),
        None => serve(cli.serve),
    }
}

fn serve(config: ServeConfig) -> ExitCode {
    init_logging(&config.log, config.log_format);
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(fhir_server::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::FAILURE
        }
    }
}

fn generate(config: GenerateConfig) -> ExitCode {
    init_logging(&config.log, LogFormat::Text);
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let options = fhir_server::generate::Options {
        patients: config.patients,
        seed: config.seed,
        concurrency: config.concurrency,
    };
    match runtime.block_on(fhir_server::generate::run(&config.database_url, &options)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            None
        }
    }
}

fn init_logging(log: &str, format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
