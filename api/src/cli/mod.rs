//! The `countersign` command line: one binary for the server and its operators' tools.
//!
//! Exit status: 0 success, 1 the operation failed or found a fault, 2 bad usage (clap's own).
//! Errors go to stderr as one sentence, never a panic or a backtrace.

mod audit;
mod authenticator;
mod bench;
mod bench_audit;
mod demo;
mod local;
pub mod phone;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::channels::ChannelsConfig;
use crate::credentials::{self, Role};
use crate::{open_database, Application, Config};

/// Self-hosted transaction approval: Strong Customer Authentication with dynamic linking.
#[derive(Debug, Parser)]
#[command(name = "countersign", version, about)]
pub struct Cli {
    /// The database: `sqlite://PATH` (created if missing).
    #[arg(
        long,
        env = "COUNTERSIGN_DATABASE_URL",
        default_value = "sqlite://countersign.db",
        global = true
    )]
    pub database_url: String,
    /// The server's key file, created with mode 0600 on first use. Every instance of one
    /// deployment needs the same file.
    #[arg(
        long,
        env = "COUNTERSIGN_KEY_FILE",
        default_value = "countersign.keys",
        global = true
    )]
    pub key_file: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Applies migrations, then serves the HTTP API.
    Serve(ServeArgs),
    /// Applies the database migrations and exits.
    Migrate,
    /// Manages API credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Lists and rebuilds read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Verifies the log, prints signed tree heads, histories, exports and evidence.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Plays a bank and a phone through one approval against an in-process server.
    Demo,
    /// Measures full approval lifecycles against an in-process server: on a fresh SQLite file,
    /// or on the PostgreSQL database given by `--database-url postgres://…`.
    Bench(bench::BenchArgs),
    /// A reference push authenticator kept in a local file, for testing a back end without a
    /// phone.
    #[command(subcommand)]
    Authenticator(authenticator::AuthenticatorCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Synchronous {
    /// Every acknowledged command is on disk (fsync per commit).
    Full,
    /// Faster; a power loss may lose the last commits (never corrupts).
    Normal,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "COUNTERSIGN_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The configuration file (delivery channels). Without this flag, `countersign.toml` is read
    /// if it exists.
    #[arg(long, env = "COUNTERSIGN_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(
        long,
        env = "COUNTERSIGN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// SQLite durability.
    #[arg(
        long,
        env = "COUNTERSIGN_SYNCHRONOUS",
        value_enum,
        default_value = "full"
    )]
    synchronous: Synchronous,
    /// Consumption token lifetime in seconds.
    #[arg(long, env = "COUNTERSIGN_TOKEN_TTL", default_value_t = 60, value_parser = clap::value_parser!(u32).range(5..=3600))]
    token_ttl: u32,
    /// Failed verifications before a request is rejected.
    #[arg(long, env = "COUNTERSIGN_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=10))]
    max_attempts: u8,
}

#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    /// Makes a credential and prints its id and secret once.
    Add {
        /// What it may do.
        #[arg(long, value_enum)]
        role: Role,
        /// A label for people.
        #[arg(long)]
        name: String,
        /// Action patterns a client may use, such as `bank:transfers:*` (repeatable).
        #[arg(long = "actions", num_args = 1..)]
        actions: Vec<String>,
        /// Prints `{"id", "secret", "role", "name"}` on one line.
        #[arg(long)]
        json: bool,
    },
    /// Lists credentials (never their secrets).
    List {
        /// Prints JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the key a client verifies its callbacks' signatures with.
    CallbackKey {
        /// The client credential's id.
        id: uuid::Uuid,
    },
    /// Revokes a credential at once.
    Revoke {
        /// The credential's id.
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Lists the read models with their position and size.
    List,
    /// Rebuilds read models from the log into fresh tables and swaps them in.
    Rebuild {
        /// The read model (`status`).
        name: Option<String>,
        /// Rebuilds every read model.
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
}

/// Parses the arguments, runs the command, and returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            init_logs(args.log_format);
            let mut config = Config::new(&cli.database_url, &cli.key_file);
            config.listen = args.listen;
            config.durable = matches!(args.synchronous, Synchronous::Full);
            config.settings.token_ttl = chrono::Duration::seconds(i64::from(args.token_ttl));
            config.settings.max_attempts = args.max_attempts;
            config.channels = match &args.config {
                Some(path) => ChannelsConfig::load(path, true)?,
                None => ChannelsConfig::load(std::path::Path::new("countersign.toml"), false)?,
            };
            let channels: Vec<&String> = config.channels.channels.keys().collect();
            tracing::info!(?channels, "delivery channels");
            let app = Application::build(config).await?;
            tracing::info!(address = %app.local_addr(), database = %cli.database_url, "listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            open_database(&cli.database_url, true).await?;
            println!("migrations applied to {}", cli.database_url);
        }
        Command::Credentials(command) => {
            credentials_command(&cli.database_url, &cli.key_file, command).await?
        }
        Command::Projections(command) => projections_command(&cli.database_url, command).await?,
        Command::Audit(command) => {
            return audit::run(command, &cli.database_url, &cli.key_file).await
        }
        Command::Demo => demo::run().await?,
        Command::Bench(args) => bench::run(args, &cli.database_url).await?,
        Command::Authenticator(command) => authenticator::run(command).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn credentials_command(
    database_url: &str,
    key_file: &std::path::Path,
    command: CredentialsCommand,
) -> anyhow::Result<()> {
    let callback_key = |id| -> anyhow::Result<String> {
        let keys = crate::keys::ServerKeys::load_or_create(key_file)?;
        Ok(hex::encode(keys.callback_key(id)))
    };
    let db = open_database(database_url, true).await?;
    let pool = &db.pool();
    match command {
        CredentialsCommand::Add {
            role,
            name,
            actions,
            json,
        } => {
            let made = credentials::create(pool, role, &name, &actions).await?;
            let key = match role {
                Role::Client => Some(callback_key(made.id)?),
                _ => None,
            };
            if json {
                let mut out = serde_json::to_value(&made)?;
                if let Some(key) = &key {
                    out["callback_key"] = key.as_str().into();
                }
                println!("{out}");
            } else {
                println!("id:           {}", made.id);
                println!("secret:       {}", made.secret);
                println!("role:         {}", made.role.as_str());
                if let Some(key) = &key {
                    println!("callback key: {key}");
                }
                println!("The secret is shown only now; store it safely.");
            }
        }
        CredentialsCommand::List { json } => {
            let all = credentials::list(pool).await?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for c in all {
                    let state = if c.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}  {:<8} {:<8} {}  {}",
                        c.id,
                        c.role.as_str(),
                        state,
                        c.name,
                        c.actions.join(" ")
                    );
                }
            }
        }
        CredentialsCommand::CallbackKey { id } => match credentials::find(pool, id).await? {
            Some(c) if c.role == Role::Client => println!("{}", callback_key(id)?),
            Some(_) => anyhow::bail!("credential {id} is not a client"),
            None => anyhow::bail!("no credential with id {id}"),
        },
        CredentialsCommand::Revoke { id } => {
            credentials::revoke(pool, id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn projections_command(
    database_url: &str,
    command: ProjectionsCommand,
) -> anyhow::Result<()> {
    use countersign_projections::rebuild;
    let db = open_database(database_url, true).await?;
    match command {
        ProjectionsCommand::List => {
            println!(
                "{:<12} {:>12} {:>12} {:>10}  state",
                "name", "checkpoint", "head", "rows"
            );
            for p in rebuild::list(&db).await? {
                println!(
                    "{:<12} {:>12} {:>12} {:>10}  {}",
                    p.name,
                    p.checkpoint,
                    p.head,
                    p.rows.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                    p.state
                );
                if let Some((position, error)) = &p.failure {
                    println!("{:<12} failed at position {position}: {error}", "");
                }
            }
        }
        ProjectionsCommand::Rebuild { name, all } => {
            let names: Vec<String> = match (name, all) {
                (_, true) => rebuild::names().iter().map(|n| n.to_string()).collect(),
                (Some(name), false) => vec![name],
                (None, false) => anyhow::bail!("name a projection to rebuild, or pass --all"),
            };
            let (several, started, mut total) = (names.len() > 1, std::time::Instant::now(), 0);
            for name in names {
                let bar = indicatif::ProgressBar::new(0).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:12} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                bar.set_message(name.clone());
                let report = rebuild::rebuild(&db, &name, |done, head| {
                    bar.set_length(head);
                    bar.set_position(done);
                })
                .await?;
                bar.finish();
                println!(
                    "rebuilt {name}: {} events in {:.2} s ({:.0} events/s), {} rows",
                    report.events,
                    report.seconds,
                    report.events as f64 / report.seconds.max(1e-9),
                    report.rows
                );
                total += report.events;
            }
            if several {
                let seconds = started.elapsed().as_secs_f64();
                println!(
                    "rebuilt all: {total} events replayed in {seconds:.2} s ({:.0} events/s)",
                    total as f64 / seconds.max(1e-9)
                );
            }
        }
    }
    Ok(())
}
