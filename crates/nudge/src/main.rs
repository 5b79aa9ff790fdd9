//! `nudge`: the one binary. `serve` runs the server; `demo` runs it with a demo shop;
//! `migrate`, `import`, `export`, `keys` manage data; `bench` measures.

mod bench;
mod bench_journey_latency;
mod bench_journey_timers;
mod bench_journeys;
mod bench_messages;
mod bench_segments;
mod config;
mod demo;
mod messaging;
mod server;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Overrides, Settings};
use nudge_store::KeyKind;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "nudge",
    version,
    about = "Open-source marketing automation: events, contacts, segments, journeys."
)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Run the server on a data directory of its own, filled with a demo shop.
    Demo {
        /// Contacts to generate on first start.
        #[arg(long, default_value_t = 3000)]
        contacts: usize,
    },
    /// Apply database migrations and exit (serve also does this at start).
    Migrate,
    /// Import contacts from a CSV file (header row; user_id and/or email columns).
    Import { file: PathBuf },
    /// Export all contacts as CSV (to a file, or standard output).
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Journeys: list them, or install a ready-made one.
    Journeys {
        #[command(subcommand)]
        action: JourneysAction,
    },
    /// Benchmarks (figures in BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// List keys (secrets are never shown again).
    List,
    /// Create a key and print its secret once.
    Create {
        /// `write` (public, tracking only) or `admin` (secret, admin API).
        #[arg(long, value_parser = ["write", "admin"])]
        kind: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Revoke a key by id.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum JourneysAction {
    /// The journeys in the database, and the ready-made ones that can be installed.
    List,
    /// Install a ready-made journey with its templates (and segment).
    Install {
        /// Its key, e.g. abandoned_cart (see `nudge journeys list`).
        key: String,
        /// Make it live at once (otherwise it is a draft to review and publish).
        #[arg(long)]
        publish: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.overrides)?;
    init_logging(&settings.log_format);
    let now = || jiff::Timestamp::now().as_millisecond();
    match cli.command {
        Command::Serve => server::serve(settings, None).await,
        Command::Demo { contacts } => demo::run(settings, &cli.overrides, contacts).await,
        Command::Migrate => {
            let store = open(&settings).await?;
            println!("migrations applied ({})", store.backend());
            store.close().await;
            Ok(())
        }
        Command::Import { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows = nudge_api::csv_io::parse_contacts_csv(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message))?;
            let store = open(&settings).await?;
            let n = rows.len();
            let report = store.import_contacts(rows, now()).await?;
            store.close().await;
            println!(
                "imported {n} rows: {} created, {} updated",
                report.created, report.updated
            );
            Ok(())
        }
        Command::Export { output } => {
            let store = open(&settings).await?;
            let csv = nudge_api::csv_io::export_contacts_csv(&*store)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            store.close().await;
            match output {
                Some(path) => std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{csv}"),
            }
            Ok(())
        }
        Command::Keys { action } => {
            let store = open(&settings).await?;
            let result = keys(&*store, action, now()).await;
            store.close().await;
            result
        }
        Command::Journeys { action } => {
            let store = open(&settings).await?;
            let result = journeys(&*store, action, now()).await;
            store.close().await;
            result
        }
        Command::Bench { which } => bench::run(which).await,
    }
}

async fn journeys(store: &dyn nudge_store::Store, action: JourneysAction, now: i64) -> anyhow::Result<()> {
    use nudge_api::ready_made_journeys::{InstallError, install, ready_made_journeys};
    match action {
        JourneysAction::List => {
            println!("{:<6} {:<10} {:<8} name", "id", "status", "version");
            for j in store.journeys().await? {
                println!("{:<6} {:<10} {:<8} {}", j.id, j.status.as_str(), j.version, j.name);
            }
            println!("\nready-made (nudge journeys install <key> [--publish]):");
            for r in ready_made_journeys() {
                println!("  {:<24} {}", r.key, r.description);
            }
            Ok(())
        }
        JourneysAction::Install { key, publish } => match install(store, &key, publish, now).await {
            Ok(j) => {
                println!(
                    "installed journey {} \"{}\" ({}){}",
                    j.id,
                    j.name,
                    j.status.as_str(),
                    if publish {
                        ""
                    } else {
                        "; publish it with POST /api/v1/journeys/{id}/publish"
                    }
                );
                Ok(())
            }
            Err(InstallError::UnknownKey(m)) | Err(InstallError::Invalid(m)) => anyhow::bail!(m),
            Err(InstallError::Store(e)) => Err(e.into()),
        },
    }
}

async fn keys(store: &dyn nudge_store::Store, action: KeysAction, now: i64) -> anyhow::Result<()> {
    match action {
        KeysAction::List => {
            println!(
                "{:>5}  {:<6}  {:<10}  {:<25}  {:<25}  name",
                "id", "kind", "prefix", "created", "revoked"
            );
            for k in store.list_keys().await? {
                println!(
                    "{:>5}  {:<6}  {:<10}  {:<25}  {:<25}  {}",
                    k.id,
                    k.kind.as_str(),
                    k.prefix,
                    nudge_core::format_millis(k.created_at),
                    k.revoked_at.map(nudge_core::format_millis).unwrap_or_default(),
                    k.name
                );
            }
        }
        KeysAction::Create { kind, name } => {
            let kind = KeyKind::parse(&kind).context("kind must be write or admin")?;
            let (key, secret) = nudge_api::keys::create_key(store, kind, &name, now)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!(
                "created {} key {} ({}); its secret, shown only now:\n{secret}",
                kind.as_str(),
                key.id,
                key.name
            );
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_key(id, now).await? {
                anyhow::bail!("no active key with id {id}");
            }
            println!("revoked key {id}");
        }
    }
    Ok(())
}

pub async fn open(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn nudge_store::Store>> {
    nudge_store::open(settings.database_url(), &settings.data_dir)
        .await
        .with_context(|| match settings.database_url() {
            Some(_) => "opening the PostgreSQL database".to_string(),
            None => format!("opening the database in {}", settings.data_dir.display()),
        })
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("NUDGE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
