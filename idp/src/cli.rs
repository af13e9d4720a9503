//! The `idp` command line. Every command reads the same configuration as the
//! server (`--config FILE`, then `IDP__…` environment variables). Errors are
//! one line on stderr and a non-zero exit, never a panic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::account::{self, CreateUserError, NewAccount};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config};
use crate::domain::{
    AuditKind, ClientId, ClientKind, Email, GrantType, IdTokenAlg, PlainPassword, RedirectUri,
};
use crate::oidc::{self, ClientRegistration};
use crate::startup::{self, Application};
use crate::store;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(name = "idp", version, about = "OpenID Connect identity provider")]
pub struct Cli {
    /// Configuration file [default: config/idp.toml if present, else built-in defaults]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (applies migrations first unless database.migrate_on_start = false)
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
    /// Print the effective configuration, secrets redacted; exit 1 if it is invalid
    CheckConfig,
    /// Manage user accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage relying-party clients
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage token signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account
    Create(UserCreate),
    /// List accounts
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Turn off a user's two-step sign-in (lost phone): removes the authenticator and recovery codes, mails the owner
    ResetMfa {
        #[arg(long)]
        email: String,
    },
    /// Give an existing account the admin role (the first administrator; later ones through the admin API)
    GrantAdmin {
        #[arg(long)]
        email: String,
    },
    /// Import accounts from a portal's export, passwords and all (JSON Lines; docs/migration.md)
    #[command(
        after_help = "Prints a JSON summary on standard output and each refused line with its \
reason on standard error.\nExit status: 0 when no line was refused, 1 otherwise (or on an error)."
    )]
    Import(UserImport),
}

#[derive(Debug, Args)]
pub struct UserImport {
    /// JSON Lines file of accounts, one record a line (`-`: standard input)
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Check every line and report what would be done; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Addresses that already exist take the file's name, verification, password hash and authenticator
    #[arg(long)]
    pub update: bool,
    /// One transaction for the whole file: nothing is written if any line is refused
    #[arg(long)]
    pub all_or_nothing: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("secret").required(true).args(["password", "password_file", "password_stdin"])))]
pub struct UserCreate {
    #[arg(long)]
    pub email: String,
    /// The password (visible to other users of this machine in the process
    /// list and in shell history: prefer --password-file or --password-stdin)
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the first line of FILE (`-`: standard input)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long, default_value = "")]
    pub name: String,
    /// Mark the email address as already verified
    #[arg(long)]
    pub verified: bool,
    /// Give the account the admin role (it signs in to the console with a one-time code)
    #[arg(long)]
    pub admin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints {"client_id", "client_secret"} (the secret is shown only now)
    Create(Box<ClientCreate>),
    /// List clients
    List,
}

#[derive(Debug, Args)]
pub struct ClientCreate {
    #[arg(long)]
    pub client_id: String,
    #[arg(long)]
    pub name: String,
    /// Allowed redirect URI, matched exactly (repeatable)
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI (repeatable)
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE required)
    #[arg(long)]
    pub public: bool,
    /// A first-party client: users are not asked for consent
    #[arg(long)]
    pub first_party: bool,
    /// Theme of the pages shown for this client
    #[arg(long)]
    pub theme: Option<String>,
    /// Allowed grant type (repeatable) [default: authorization_code, refresh_token, and client_credentials for confidential clients]
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// ID token signing algorithm: RS256, ES256 or EdDSA
    #[arg(long, default_value = "RS256")]
    pub id_token_alg: String,
    /// Users of this client must sign in with a second factor
    #[arg(long)]
    pub require_mfa: bool,
    /// A confidential client must use PKCE too (public clients always do)
    #[arg(long)]
    pub require_pkce: bool,
    /// Scope the client may be granted (repeatable) [default: openid, profile, email, offline_access].
    /// `admin` lets a client_credentials client call the admin API.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// The claim in which this client receives the account's external id for its
    /// portal (the id imported for the client id, else for its theme; docs/migration.md)
    #[arg(long, value_name = "CLAIM")]
    pub external_id_claim: Option<String>,
}

/// A command's failure, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Start(#[from] startup::StartError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::Input(e.to_string())
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(cli.config.as_deref())?;
    if !matches!(cli.command, Command::CheckConfig) {
        embedded_notice(cli.config.is_none(), &config);
    }
    match cli.command {
        Command::CheckConfig => {
            // As `serve` would: a deployment without its themes cannot start.
            load_themes(&config)?;
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Serve => {
            telemetry::init(&config.log);
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Migrate => {
            let store = store::connect(&config.database)
                .await
                .map_err(startup::StartError::from)?;
            store.migrate().await.map_err(startup::StartError::from)?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::User(cmd) => user(config, cmd).await,
        Command::Client(cmd) => client(config, cmd).await,
        Command::Keys(cmd) => keys(config, cmd).await,
    }
}

/// Run outside a deployment folder (no configuration file found, no
/// database configured), a command would silently open or create an empty
/// embedded database in the current directory: it says which, on stderr.
fn embedded_notice(no_config_flag: bool, config: &Config) {
    let found_file = std::path::Path::new(config::DEFAULT_PATH).exists();
    let default_db = config.database.url == config::DatabaseConfig::default().url;
    if !no_config_flag || found_file || !default_db {
        return;
    }
    let Some(path) = config
        .database
        .url
        .expose()
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p).to_owned())
    else {
        return;
    };
    let state = if std::path::Path::new(&path).exists() {
        "existing"
    } else {
        "created"
    };
    eprintln!(
        "note: no {} here and no database configured: using the embedded database at {path} ({state})",
        config::DEFAULT_PATH
    );
}

/// The installed themes, as `serve` loads them; a missing folder is named.
fn load_themes(config: &Config) -> Result<crate::web::theme::Themes, CliError> {
    if !config.themes.dir.is_dir() {
        return Err(input(format!(
            "themes.dir: there is no themes folder at {} (run from the deployment's folder, or set themes.dir or IDP__THEMES__DIR)",
            config.themes.dir.display()
        )));
    }
    crate::web::theme::Themes::load(&config.themes.dir)
        .map_err(|e| CliError::Start(startup::StartError::from(e)))
}

/// The password of `user create`, from exactly one of its three sources.
fn read_password(args: &UserCreate) -> Result<String, CliError> {
    use std::io::BufRead;
    let first_line = |text: &str| -> String {
        text.lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r')
            .to_owned()
    };
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    let from_stdin =
        args.password_stdin || args.password_file.as_deref() == Some(std::path::Path::new("-"));
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| input(format!("cannot read the password from standard input: {e}")))?;
        return Ok(first_line(&line));
    }
    match &args.password_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| first_line(&t))
            .map_err(|e| {
                input(format!(
                    "--password-file: cannot read {}: {e}",
                    path.display()
                ))
            }),
        None => Err(input(
            "give --password-file FILE, --password-stdin or --password",
        )),
    }
}

/// What the account and client commands need: the durable store (migrated
/// unless configured not to), the password hasher and the clock. No themes,
/// no ephemeral store: these commands work from any directory.
struct Backend {
    store: store::SharedStore,
    hasher: crate::credentials::PasswordHasher,
    clock: SystemClock,
}

async fn open(config: Config) -> Result<Backend, CliError> {
    let store = store::connect(&config.database)
        .await
        .map_err(startup::StartError::from)?;
    if config.database.migrate_on_start {
        store.migrate().await.map_err(startup::StartError::from)?;
    }
    let hasher = crate::credentials::PasswordHasher::new(&config.password_hashing)
        .map_err(startup::StartError::from)?;
    Ok(Backend {
        store,
        hasher,
        clock: SystemClock,
    })
}

async fn user(config: Config, cmd: UserCommand) -> Result<(), CliError> {
    match cmd {
        UserCommand::Create(args) => {
            let email = Email::parse(&args.email).map_err(|e| input(format!("--email: {e}")))?;
            let raw = read_password(&args)?;
            if raw.is_empty() {
                return Err(input("the password is empty"));
            }
            // The deployment's policy, as the admin API and the sign-up page apply it.
            let policy =
                crate::credentials::policy::PasswordPolicy::new(config.password_policy.clone());
            let refused = policy.check(&raw, &[args.name.as_str(), email.as_str()]);
            if !refused.is_empty() {
                return Err(input(format!(
                    "the password does not meet the password policy: {}",
                    refused.join(" ")
                )));
            }
            let password =
                PlainPassword::parse(&raw).map_err(|e| input(format!("password: {e}")))?;
            let state = open(config).await?;
            let user = account::create_user(
                state.store.as_ref(),
                &state.hasher,
                &state.clock,
                NewAccount {
                    email,
                    name: args.name,
                    password: Some(password),
                    email_verified: args.verified,
                    is_admin: args.admin,
                },
            )
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken | CreateUserError::NameTooLong => input(e),
                other => CliError::Failed(other.to_string()),
            })?;
            if user.is_admin {
                audit_cli(&state, AuditKind::AdminAdminGranted, &user).await?;
            }
            println!(
                "{}",
                json!({ "user_id": user.id.as_str(), "email": user.email.as_str(), "admin": user.is_admin })
            );
            Ok(())
        }
        UserCommand::GrantAdmin { email } => {
            let email = Email::parse(&email).map_err(|e| input(format!("--email: {e}")))?;
            let state = open(config).await?;
            let failed = |e: store::Error| CliError::Failed(e.to_string());
            let user = state
                .store
                .user_by_email(&email)
                .await
                .map_err(failed)?
                .ok_or_else(|| input(format!("no account has the address {}", email.as_str())))?;
            let user = state
                .store
                .set_user_admin(&user.id, true, state.clock.now())
                .await
                .map_err(failed)?
                .ok_or_else(|| CliError::Failed("the account vanished meanwhile".into()))?;
            audit_cli(&state, AuditKind::AdminAdminGranted, &user).await?;
            println!(
                "{}",
                json!({ "user_id": user.id.as_str(), "email": user.email.as_str(), "admin": true })
            );
            Ok(())
        }
        UserCommand::ResetMfa { email } => {
            let email = Email::parse(&email).map_err(|e| input(format!("--email: {e}")))?;
            let themes = crate::web::theme::Themes::load(&config.themes.dir)
                .map_err(startup::StartError::from)?;
            let issuer = config.server.issuer.clone();
            let state = open(config).await?;
            let failed = |e: &dyn std::fmt::Display| CliError::Failed(e.to_string());
            let user = state
                .store
                .user_by_email(&email)
                .await
                .map_err(|e| failed(&e))?
                .ok_or_else(|| input(format!("no account has the address {}", email.as_str())))?;
            let reset = crate::mfa::reset(
                state.store.as_ref(),
                &themes.get(None),
                &issuer,
                state.clock.now(),
                &user,
                "cli",
            )
            .await
            .map_err(|e| failed(&e))?;
            if !reset {
                return Err(input(format!(
                    "{} has no two-step sign-in to reset",
                    email.as_str()
                )));
            }
            println!(
                "{}",
                json!({ "user_id": user.id.as_str(), "email": user.email.as_str(), "mfa": "reset" })
            );
            Ok(())
        }
        UserCommand::Import(args) => import_users(config, args).await,
        UserCommand::List { limit, offset } => {
            let state = open(config).await?;
            let users = state
                .store
                .list_users(limit.min(10_000), offset)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            for u in users {
                println!(
                    "{}",
                    json!({
                        "user_id": u.id.as_str(),
                        "email": u.email.as_str(),
                        "name": u.name,
                        "email_verified": u.email_verified,
                        "disabled": u.disabled,
                        "locked_until": u.locked_until.map(|t| t.unix_timestamp()),
                        "admin": u.is_admin,
                    })
                );
            }
            Ok(())
        }
    }
}

/// `idp user import`: streams the file through the import, a counter on
/// stderr when it is a terminal, the summary at the end.
async fn import_users(config: Config, args: UserImport) -> Result<(), CliError> {
    use crate::migration::{ImportOptions, Portals, Records, Target};
    use std::io::{BufRead, BufReader, IsTerminal, Write};

    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(1 << 16, std::io::stdin()))
    } else {
        let cannot = |e: &dyn std::fmt::Display| {
            input(format!("--file: cannot read {}: {e}", args.file.display()))
        };
        let file = std::fs::File::open(&args.file).map_err(|e| cannot(&e))?;
        if file.metadata().map_err(|e| cannot(&e))?.is_dir() {
            return Err(cannot(&"it is a folder"));
        }
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let themes = load_themes(&config)?;
    let kek =
        crate::tokens::keys::encryption_key(&config.keys).map_err(startup::StartError::from)?;
    let state = open(config).await?;
    let failed = |e: store::Error| CliError::Failed(e.to_string());
    let portals = Portals::load(state.store.as_ref(), themes.names())
        .await
        .map_err(failed)?;
    let target = Target {
        store: state.store.as_ref(),
        kek: kek.as_deref(),
        portals: &portals,
        now: state.clock.now(),
        actor: "cli",
    };
    let options = ImportOptions {
        dry_run: args.dry_run,
        update: args.update,
        all_or_nothing: args.all_or_nothing,
    };
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |n: usize| {
        if terminal {
            eprint!("\r{n} records read");
            let _ = std::io::stderr().flush();
        }
    };
    let summary = crate::migration::import(&target, Records::new(reader), &options, &mut progress)
        .await
        .map_err(|e| match e {
            store::Error::Conflict => CliError::Failed(
                "an address or external id was taken by someone else while importing; nothing was written".into(),
            ),
            other => failed(other),
        })?;
    if terminal {
        eprintln!();
    }
    for refused in &summary.refused {
        eprintln!("line {}: {}", refused.line, refused.reason);
    }
    let mut report = serde_json::to_value(&summary).map_err(|e| CliError::Failed(e.to_string()))?;
    report["refused"] = json!(summary.refused.len());
    report["dry_run"] = json!(args.dry_run);
    println!("{report}");
    match summary.refused.len() {
        0 => Ok(()),
        n if summary.written => Err(input(format!(
            "{n} line(s) refused; the others were imported"
        ))),
        n => Err(input(format!("{n} line(s) refused; nothing was written"))),
    }
}

/// An administration done from the command line, audited with the actor `cli`.
async fn audit_cli(state: &Backend, kind: AuditKind, user: &store::User) -> Result<(), CliError> {
    let event = store::AuditEvent {
        kind: kind.as_str().to_owned(),
        user_id: Some(user.id.clone()),
        actor: Some("cli".into()),
        client_id: None,
        ip: None,
        user_agent: None,
        detail: json!({}),
    };
    state
        .store
        .record(event, state.clock.now())
        .await
        .map_err(|e| CliError::Failed(e.to_string()))
}

async fn client(config: Config, cmd: ClientCommand) -> Result<(), CliError> {
    match cmd {
        ClientCommand::Create(args) => {
            let scopes = args.scopes.clone();
            if let Some(theme) = &args.theme {
                let themes = load_themes(&config)?;
                if !themes.exists(theme) {
                    let mut names: Vec<&str> = themes.names().collect();
                    names.sort_unstable();
                    return Err(input(format!(
                        "--theme: no theme named {theme} is installed in {}; installed: {}",
                        config.themes.dir.display(),
                        names.join(", ")
                    )));
                }
            }
            let registration = parse_client(*args)?;
            let state = open(config).await?;
            let registered = oidc::register_client_with_scopes(
                state.store.as_ref(),
                &state.clock,
                registration,
                &scopes,
            )
            .await
            .map_err(|e| match e {
                oidc::RegisterClientError::Store(s) => CliError::Failed(s.to_string()),
                other => input(other),
            })?;
            println!(
                "{}",
                json!({
                    "client_id": registered.client.id.as_str(),
                    "client_secret": registered.secret,
                })
            );
            Ok(())
        }
        ClientCommand::List => {
            let state = open(config).await?;
            let clients = state
                .store
                .list_clients()
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            for c in clients {
                println!(
                    "{}",
                    json!({
                        "client_id": c.id.as_str(),
                        "name": c.name,
                        "kind": c.kind.as_str(),
                        "redirect_uris": c.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
                        "post_logout_redirect_uris": c.post_logout_redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
                        "first_party": c.first_party,
                        "theme": c.theme,
                        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                        "id_token_alg": c.id_token_alg.as_str(),
                        "require_mfa": c.require_mfa,
                        "external_id_claim": c.external_id_claim,
                        "require_pkce": c.require_pkce,
                        "scopes": c.scopes,
                    })
                );
            }
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// One JSON line per published key: kid, alg, state (next, active, retired) and its dates
    List,
    /// Add a new key per algorithm now, even if the current ones are fresh; prints the new kids.
    /// They are published at once and sign after keys.publish_ahead_minutes.
    Rotate,
}

/// Both commands load the keys as a server would (creating the first set
/// on an empty database, and failing on a wrong keys.encryption_key).
async fn keys(config: Config, cmd: KeysCommand) -> Result<(), CliError> {
    use crate::clock::Clock;
    use crate::tokens::keys::{KeyState, SigningKeys, encryption_key};
    use time::format_description::well_known::Rfc3339;

    let keys_config = config.keys.clone();
    let kek = encryption_key(&keys_config).map_err(startup::StartError::from)?;
    let state = open(config).await?;
    let keys = SigningKeys::load(
        state.store.clone(),
        std::sync::Arc::new(state.clock),
        &keys_config,
        kek,
    )
    .await
    .map_err(startup::StartError::from)?;
    match cmd {
        KeysCommand::List => {
            let now = state.clock.now();
            let rows = state
                .store
                .signing_keys()
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            let date = |t: time::OffsetDateTime| t.format(&Rfc3339).ok();
            for k in rows.iter().filter(|k| k.expires_at.is_none_or(|e| e > now)) {
                println!(
                    "{}",
                    json!({
                        "kid": k.kid,
                        "alg": k.alg.as_str(),
                        "state": KeyState::of(k, now).as_str(),
                        "created_at": date(k.created_at),
                        "activates_at": date(k.activates_at),
                        "retires_at": k.retires_at.and_then(date),
                        "expires_at": k.expires_at.and_then(date),
                    })
                );
            }
            Ok(())
        }
        KeysCommand::Rotate => {
            let kids = keys
                .rotate_keys(true)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?
                .unwrap_or_default();
            for kid in kids {
                println!("{}", json!({ "kid": kid }));
            }
            Ok(())
        }
    }
}

fn parse_client(args: ClientCreate) -> Result<ClientRegistration, CliError> {
    let uris = |flag: &str, list: &[String]| -> Result<Vec<RedirectUri>, CliError> {
        list.iter()
            .map(|u| RedirectUri::parse(u).map_err(|e| input(format!("{flag}: {e}"))))
            .collect()
    };
    Ok(ClientRegistration {
        id: ClientId::parse(&args.client_id).map_err(|e| input(format!("--client-id: {e}")))?,
        name: args.name,
        kind: if args.public {
            ClientKind::Public
        } else {
            ClientKind::Confidential
        },
        redirect_uris: uris("--redirect-uri", &args.redirect_uris)?,
        post_logout_redirect_uris: uris(
            "--post-logout-redirect-uri",
            &args.post_logout_redirect_uris,
        )?,
        first_party: args.first_party,
        theme: args.theme,
        grant_types: args
            .grants
            .iter()
            .map(|g| {
                g.parse::<GrantType>().map_err(|_| {
                    let valid: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
                    input(format!(
                        "--grant: unknown grant type {g}; valid: {}",
                        valid.join(", ")
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        id_token_alg: args
            .id_token_alg
            .parse::<IdTokenAlg>()
            .map_err(|e| input(format!("--id-token-alg: {e}")))?,
        require_mfa: args.require_mfa,
        require_pkce: args.require_pkce,
        external_id_claim: args.external_id_claim,
    })
}
