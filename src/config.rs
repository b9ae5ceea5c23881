//! Command line and environment settings. Flag and variable names are a contract outside tools
//! rely on (`--listen`/`FHIR_LISTEN`, `--database-url`/`DATABASE_URL`, `--base-url`/`FHIR_BASE_URL`, …).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "fhir-server",
    version,
    about = "A FHIR R4 (4.0.1) server",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for serving (the default command).
    #[command(flatten)]
    pub serve: ServeConfig,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve FHIR R4 over HTTP (the default when no command is given).
    Serve(Box<ServeConfig>),
    /// Work with the generated FHIR definitions in fhir-schemas/ and search-params/.
    Definitions {
        #[command(subcommand)]
        action: DefinitionsCommand,
    },
    /// Write a synthetic, Synthea-like data set (about 40 resources per patient) straight into a
    /// database, migrating it first; for benchmarks.
    Generate(GenerateConfig),
    /// For development: a signing key pair (PEM and JWK Set), e.g. for a test identity provider
    /// or a Backend Services client.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// For development: print an access token signed with a PEM key (ES384 for a P-384 key, RS256
    /// or `--alg` for an RSA key), for a server that trusts that key's JWK Set.
    Token(TokenConfig),
    /// Run FHIR TestScripts (JSON or XML) against a FHIR R4 server, this one or any other, writing
    /// a TestReport per script. Exit code 0 when every script passes, 1 when a test fails or
    /// errs, 2 for bad usage or a script that cannot be read.
    Conformance(ConformanceConfig),
}

#[derive(Debug, Clone, Args)]
pub struct ConformanceConfig {
    /// The server under test, e.g. http://127.0.0.1:8080/fhir/R4.
    #[arg(long)]
    pub base: String,
    /// A bearer token to send with every request to the base's origin (from the environment,
    /// it stays out of the process list).
    #[arg(
        long,
        env = "FHIR_CONFORMANCE_TOKEN",
        hide_env_values = true,
        conflicts_with = "client_id"
    )]
    pub token: Option<String>,
    /// Obtain a token by SMART Backend Services as this client (with --client-key, --token-url,
    /// --scope).
    #[arg(long, requires_all = ["client_key", "token_url", "scope"])]
    pub client_id: Option<String>,
    /// The client's private key (PEM: P-384 EC signs ES384, RSA signs RS384).
    #[arg(long, requires = "client_id")]
    pub client_key: Option<PathBuf>,
    /// The `kid` the authorization server registered for the client's key (default: the key's
    /// RFC 7638 thumbprint for an EC key, as `fhir-server keys generate` names it).
    #[arg(long, requires = "client_id")]
    pub client_kid: Option<String>,
    /// The authorization server's token endpoint.
    #[arg(long, requires = "client_id")]
    pub token_url: Option<String>,
    /// Space-separated scopes to ask for, e.g. "system/*.cruds".
    #[arg(long, requires = "client_id")]
    pub scope: Option<String>,
    /// A variable's value (over the script's own), e.g. --var patientId=123; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Where the TestReports are written, one per script.
    #[arg(long, default_value = "conformance-reports")]
    pub report_dir: PathBuf,
    /// Also write JUnit XML for CI dashboards.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Also POST each TestReport to the server under test.
    #[arg(long)]
    pub post_report: bool,
    /// TestScript files, or directories searched recursively for them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new P-384 private key (`private-key.pem`, readable by its owner only) and its
    /// public JWK Set (`jwks.json`) into a directory.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct TokenConfig {
    /// The private key (PEM): P-384 EC, or RSA.
    #[arg(long)]
    pub key: PathBuf,
    /// The `kid` of the key in the JWK Set the server trusts.
    #[arg(long)]
    pub kid: String,
    #[arg(long)]
    pub issuer: String,
    #[arg(long)]
    pub audience: String,
    /// Space-separated SMART scopes, e.g. "patient/*.rs".
    #[arg(long)]
    pub scope: String,
    /// The launch patient's id (`patient` claim).
    #[arg(long)]
    pub patient: Option<String>,
    /// The user (`fhirUser` claim), e.g. Practitioner/123.
    #[arg(long)]
    pub fhir_user: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 300)]
    pub expires_in: u64,
    /// For an RSA key: RS256 or RS384.
    #[arg(long, default_value = "RS256")]
    pub alg: String,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateConfig {
    /// The database to fill: `sqlite:PATH` or `postgres://…`, as for serving.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// Patients to generate; each comes with about 39 more resources (Encounters, Observations,
    /// Conditions), plus 70 shared Organizations and Practitioners in all.
    #[arg(long)]
    pub patients: u64,

    /// The same seed gives the same data set, ids included.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Groups of 2,000 writes in flight at once (also the PostgreSQL pool size).
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,

    /// Log filter, e.g. `warn`.
    #[arg(long, env = "FHIR_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum DefinitionsCommand {
    /// Regenerate the committed definition files from the official hl7.fhir.r4.core 4.0.1 package.
    Generate {
        /// The unpacked package folder (the one holding package.json).
        #[arg(long)]
        package: PathBuf,
        /// The repository root to write fhir-schemas/ (and search-params/) into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "FHIR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Where resources are stored: `sqlite:PATH` (created if missing) or `postgres://user:pass@host:port/db`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:data/fhir.sqlite")]
    pub database_url: String,

    /// Public base URL used in links, Location headers and Bundles [default: http://LISTEN/fhir/R4].
    #[arg(long, env = "FHIR_BASE_URL")]
    pub base_url: Option<String>,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "FHIR_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Database connections: the PostgreSQL pool size, or the number of SQLite reader connections
    /// (SQLite always has exactly one writer connection).
    #[arg(long, env = "FHIR_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// SQLite only: MiB of current resource versions kept in memory for reads by id (0: none).
    #[arg(long, env = "FHIR_CACHE_MIB", default_value_t = 256)]
    pub cache_mib: usize,

    /// SQLite only: `full` (the default) makes every acknowledged write durable: each commit
    /// (concurrent writes share one) waits for the disk to confirm it, so a power loss or an
    /// operating-system crash loses nothing the server answered 2xx for. `normal` skips that
    /// wait: faster writes, and still safe across a crash of the server process, but a power
    /// loss may drop the last commits although clients were told they were stored.
    #[arg(long, env = "FHIR_SQLITE_DURABILITY", value_enum, default_value_t = SqliteDurabilityArg::Full)]
    pub sqlite_durability: SqliteDurabilityArg,

    /// Search page size when the client gives no `_count`.
    #[arg(long, env = "FHIR_SEARCH_DEFAULT_COUNT", default_value_t = 20)]
    pub search_default_count: u32,

    /// Largest search page size honoured; a larger `_count` is lowered to it.
    #[arg(long, env = "FHIR_SEARCH_MAX_COUNT", default_value_t = 1000)]
    pub search_max_count: u32,

    /// Matches counted for `Bundle.total` when the client does not ask with `_total`: a search
    /// with at most this many matches gets its total, a larger one none (counting every match
    /// of a broad search would cost more than its first page). `_total=accurate` always counts.
    #[arg(long, env = "FHIR_SEARCH_DEFAULT_TOTAL_LIMIT", default_value_t = 1000)]
    pub search_default_total_limit: u32,

    /// Index rows a search clause must have to be called broad and tested row by row
    /// instead of gathered as a set (see `search::plan`). A tuning knob; `0` tests every clause
    /// row by row.
    #[arg(long, env = "FHIR_SEARCH_SET_LIMIT", default_value_t = crate::search::limits::SET_LIMIT)]
    pub search_set_limit: u32,

    /// Make a new version on every update, even one whose content equals the current version's.
    /// Without it such an update writes nothing and answers 200 with the current version.
    #[arg(long, env = "FHIR_UPDATE_ALWAYS_VERSIONS")]
    pub update_always_versions: bool,

    /// Let a conditional delete (`DELETE [type]?…`) that matches several resources delete them
    /// all (up to `--search-max-count`). Without it, several matches are a 412.
    #[arg(long, env = "FHIR_CONDITIONAL_DELETE_MULTIPLE")]
    pub conditional_delete_multiple: bool,

    /// Most entries accepted in a transaction or batch Bundle; more are a 413.
    #[arg(long, env = "FHIR_BUNDLE_MAX_ENTRIES", default_value_t = 10_000)]
    pub bundle_max_entries: usize,

    /// The issuer (`iss`) of the access tokens to trust: an external authorization server
    /// (Keycloak, Auth0, Azure AD, Okta, …), whose keys come from `--auth-jwks-file` or
    /// `--auth-jwks-url`. Turns authorization on.
    #[arg(long, env = "FHIR_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,

    /// The issuer's signing keys, as a JWK Set file (RS256, RS384, ES256, ES384, chosen by `kid`).
    #[arg(long, env = "FHIR_AUTH_JWKS_FILE")]
    pub auth_jwks_file: Option<PathBuf>,

    /// The issuer's signing keys, as a JWK Set URL: fetched at start and again (at most every
    /// 30 s) when a token names a key not yet known.
    #[arg(long, env = "FHIR_AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,

    /// The identity provider's token endpoint, to name in `.well-known/smart-configuration`
    /// (with the built-in server, its own).
    #[arg(long, env = "FHIR_AUTH_TOKEN_ENDPOINT")]
    pub auth_token_endpoint: Option<String>,

    /// The identity provider's authorization endpoint (for apps launched with a user), to name
    /// in `.well-known/smart-configuration`.
    #[arg(long, env = "FHIR_AUTH_AUTHORIZATION_ENDPOINT")]
    pub auth_authorization_endpoint: Option<String>,

    /// The audience (`aud`) every access token must name [default: the server's base URL].
    #[arg(long, env = "FHIR_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// For development only: trust tokens signed with the HS256 secret in this file (issuer
    /// `--auth-issuer`, or the base URL). Turns authorization on.
    #[arg(long, env = "FHIR_AUTH_HS256_SECRET_FILE")]
    pub auth_hs256_secret_file: Option<PathBuf>,

    /// Registered clients of the built-in authorization server for SMART Backend Services (a
    /// JSON array of `{client_id, jwks or jwks_url, scope, fhirUser?}`). Turns authorization on,
    /// and makes the server an issuer of its own tokens too.
    #[arg(long, env = "FHIR_AUTH_CLIENTS_FILE")]
    pub auth_clients_file: Option<PathBuf>,

    /// The built-in authorization server's signing key (PEM, P-384) [default: generated on first
    /// start into `signing-key.pem` beside the SQLite database, or `./data/`].
    #[arg(long, env = "FHIR_AUTH_SIGNING_KEY")]
    pub auth_signing_key: Option<PathBuf>,

    /// What `patient/` scopes reach beyond the launch patient's compartment: `named` — types
    /// outside every compartment (Practitioner, Organization, Medication, …) for reading, when
    /// the scope names the type; `none` — nothing.
    #[arg(long, env = "FHIR_AUTH_PATIENT_DIRECTORY", value_enum, default_value_t = PatientDirectoryArg::Named)]
    pub auth_patient_directory: PatientDirectoryArg,

    /// Serve without authorization on an address other than loopback. Without any `--auth-…`
    /// setting the server is open to whoever reaches it, so it refuses that unless told so.
    #[arg(long, env = "FHIR_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// Without a Consent that applies to a patient's resource: `permit` (an opt-out regime) or
    /// `deny` (opt-in).
    #[arg(long, env = "FHIR_CONSENT_DEFAULT", value_enum, default_value_t = ConsentEffectArg::Permit)]
    pub consent_default: ConsentEffectArg,

    /// Several Consents that decide: the `newest` (by `dateTime`; a tie to deny) or `deny-wins`.
    #[arg(long, env = "FHIR_CONSENT_COMBINE", value_enum, default_value_t = ConsentCombineArg::Newest)]
    pub consent_combine: ConsentCombineArg,

    /// Whether purpose of use `ETREAT` (emergency treatment) overrides a consent's deny
    /// (break-glass; always audited).
    #[arg(long, env = "FHIR_CONSENT_BREAK_GLASS", default_value_t = true, action = clap::ArgAction::Set)]
    pub consent_break_glass: bool,

    /// The purpose of use of a request whose token names none (`purpose_of_use`).
    #[arg(long, env = "FHIR_CONSENT_DEFAULT_PURPOSE", default_value = "TREAT")]
    pub consent_default_purpose: String,

    /// Apply consents to callers without a user too: `system/` clients whose token names no
    /// `fhirUser`, and every caller when authorization is off. By default they are exempt
    /// (backend services act for the organisation, not for a person the patient can name).
    #[arg(long, env = "FHIR_CONSENT_SYSTEM_CALLERS")]
    pub consent_system_callers: bool,

    /// What is audited (as AuditEvent resources): `denials` — requests refused or resources
    /// withheld by authorization; `all` — every request.
    #[arg(long, env = "FHIR_AUDIT", value_enum, default_value_t = AuditArg::Denials)]
    pub audit: AuditArg,

    /// Answer `503` rather than serve a request whose audit record cannot be queued.
    #[arg(long, env = "FHIR_AUDIT_REQUIRED")]
    pub audit_required: bool,

    /// Log line format.
    #[arg(long, env = "FHIR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `fhir_server=debug,sqlx=warn`.
    #[arg(long, env = "FHIR_LOG", default_value = "info")]
    pub log: String,
}

/// `--auth-patient-directory` (see `auth::PatientDirectory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatientDirectoryArg {
    Named,
    None,
}

/// `--sqlite-durability` (see `store::SqliteDurability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteDurabilityArg {
    Full,
    Normal,
}

/// `--audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditArg {
    Denials,
    All,
}

/// `--consent-default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsentEffectArg {
    Permit,
    Deny,
}

/// `--consent-combine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsentCombineArg {
    Newest,
    DenyWins,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl ServeConfig {
    /// Whether any setting turns authorization on.
    pub fn authorization_on(&self) -> bool {
        self.auth_issuer.is_some() || self.auth_hs256_secret_file.is_some() || self.auth_clients_file.is_some()
    }

    /// The settings a test or embedding program starts from: SQLite at `database_url`, port 0.
    pub fn for_database(database_url: impl Into<String>) -> ServeConfig {
        ServeConfig {
            listen: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            base_url: None,
            max_body_bytes: 32 * 1024 * 1024,
            db_pool_size: 8,
            cache_mib: 64,
            sqlite_durability: SqliteDurabilityArg::Full,
            search_default_count: 20,
            search_max_count: 1000,
            search_default_total_limit: 1000,
            search_set_limit: crate::search::limits::SET_LIMIT,
            update_always_versions: false,
            conditional_delete_multiple: false,
            bundle_max_entries: 10_000,
            auth_issuer: None,
            auth_jwks_file: None,
            auth_jwks_url: None,
            auth_audience: None,
            auth_token_endpoint: None,
            auth_authorization_endpoint: None,
            auth_hs256_secret_file: None,
            auth_clients_file: None,
            auth_signing_key: None,
            auth_patient_directory: PatientDirectoryArg::Named,
            allow_unauthenticated: false,
            consent_default: ConsentEffectArg::Permit,
            consent_combine: ConsentCombineArg::Newest,
            consent_break_glass: true,
            consent_default_purpose: "TREAT".to_owned(),
            consent_system_callers: false,
            audit: AuditArg::Denials,
            audit_required: false,
            log_format: LogFormat::Text,
            log: "warn".into(),
        }
    }
}
