//! `idp-console`: the admin console on its own, in front of a remote
//! identity provider (its admin API and its token endpoint reachable from
//! here). `idp serve` does not need it: it mounts the console itself.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use admin::{Console, ConsoleConfig, Endpoints, MemorySessions};
use clap::Parser;
use url::Url;

/// Every option can also come from its environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "idp-console",
    version,
    about = "The identity provider's admin console, standalone"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "IDP_CONSOLE_LISTEN", default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// Where browsers reach the console (ending in /admin/); default http://LISTEN/admin/.
    #[arg(long, env = "IDP_CONSOLE_URL")]
    url: Option<Url>,
    /// The provider's issuer (browsers sign in there).
    #[arg(long, env = "IDP_CONSOLE_ISSUER")]
    issuer: Url,
    /// Where this process reaches the provider's token endpoint; default the issuer.
    #[arg(long, env = "IDP_CONSOLE_BACKCHANNEL_URL")]
    backchannel_url: Option<Url>,
    /// The provider's admin listener, e.g. http://10.0.0.5:8081.
    #[arg(long, env = "IDP_CONSOLE_API_URL")]
    api_url: Url,
    #[arg(long, env = "IDP_CONSOLE_CLIENT_ID", default_value = "admin-console")]
    client_id: String,
    /// The console client's secret (`admin.console.client_secret` of the provider).
    #[arg(long, env = "IDP_CONSOLE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// A file holding the secret, instead of the value itself.
    #[arg(long, env = "IDP_CONSOLE_CLIENT_SECRET_FILE")]
    client_secret_file: Option<std::path::PathBuf>,
    /// Reverse proxies in front of the console that append to X-Forwarded-For
    /// (the administrator's address in the audit trail is read from it); 0: none.
    #[arg(long, env = "IDP_CONSOLE_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    trusted_proxy_hops: usize,
    /// The IANA time zone pages show times in (and date filters are read in), e.g. Europe/Paris.
    #[arg(long, env = "IDP_CONSOLE_TIME_ZONE", default_value = "UTC")]
    time_zone: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().json().init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idp-console: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client_secret = match (args.client_secret, args.client_secret_file) {
        (Some(s), _) => s,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
            .trim()
            .to_owned(),
        (None, None) => anyhow::bail!(
            "the console's client secret is missing: set IDP_CONSOLE_CLIENT_SECRET or IDP_CONSOLE_CLIENT_SECRET_FILE"
        ),
    };
    let url = match args.url {
        Some(u) => u,
        None => Url::parse(&format!("http://{}/admin/", args.listen))?,
    };
    if !url.path().ends_with("/admin/") {
        anyhow::bail!("IDP_CONSOLE_URL must end in /admin/ (the console's pages live there)");
    }
    let backchannel = args.backchannel_url.unwrap_or_else(|| args.issuer.clone());
    let config = ConsoleConfig {
        url,
        endpoints: Endpoints::of_issuer(&args.issuer, &backchannel),
        api: args.api_url,
        client_id: args.client_id,
        client_secret,
        trusted_proxy_hops: args.trusted_proxy_hops,
        time_zone: args.time_zone,
    };
    let console = Console::new(config, Arc::new(MemorySessions::default()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!(address = %args.listen, "admin console listening");
    let app = console
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
