//! The `fhir-server` binary: parse settings, start logging, hand over to `app::run` (or to
//! `generate::run` for the `generate` command, `auth::keys` for `keys` and `token`,
//! `conformance::run` for `conformance`).

use clap::Parser;
use fhir_server::config::{
    Cli, Command, ConformanceConfig, DefinitionsCommand, GenerateConfig, KeysCommand, LogFormat, ServeConfig,
};
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
        Some(Command::Keys {
            action: KeysCommand::Generate { out },
        }) => match fhir_server::auth::keys::write_key_pair(&out) {
            Ok(kid) => {
                println!("wrote {0}/private-key.pem and {0}/jwks.json (kid {kid})", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("keys generate: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Token(config)) => {
            let token = fhir_server::auth::keys::DevToken {
                key: config.key,
                kid: config.kid,
                issuer: config.issuer,
                audience: config.audience,
                scope: config.scope,
                patient: config.patient,
                fhir_user: config.fhir_user,
                client_id: config.client_id,
                expires_in: config.expires_in,
                rsa_algorithm: config.alg,
            };
            match token.sign() {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Conformance(config)) => conformance(config),
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

fn conformance(config: ConformanceConfig) -> ExitCode {
    let usage = ExitCode::from(fhir_server::conformance::EXIT_USAGE);
    let mut vars = std::collections::HashMap::new();
    for pair in &config.vars {
        let Some((name, value)) = pair.split_once('=') else {
            eprintln!("conformance: --var {pair}: expected NAME=VALUE");
            return usage;
        };
        vars.insert(name.to_owned(), value.to_owned());
    }
    let backend_services = match (&config.client_id, &config.client_key) {
        (Some(client_id), Some(key)) => match std::fs::read_to_string(key) {
            Ok(key_pem) => Some(fhir_server::conformance::client::BackendServices {
                token_url: config.token_url.clone().unwrap_or_default(),
                client_id: client_id.clone(),
                key_pem,
                kid: config.client_kid.clone(),
                scope: config.scope.clone().unwrap_or_default(),
            }),
            Err(e) => {
                eprintln!("conformance: {}: {e}", key.display());
                return usage;
            }
        },
        _ => None,
    };
    let options = fhir_server::conformance::Options {
        base: config.base,
        token: config.token,
        backend_services,
        vars,
        report_dir: config.report_dir,
        junit: config.junit,
        post_report: config.post_report,
        paths: config.paths,
    };
    let Some(runtime) = runtime() else {
        return usage;
    };
    ExitCode::from(runtime.block_on(fhir_server::conformance::run(&options)))
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
    // Colours only for a terminal: escape codes in a log file split its `key=value` fields.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
