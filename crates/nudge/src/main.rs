//! `nudge`: the one binary. `serve` runs the server; `demo` runs it with a demo shop;
//! `migrate`, `import`, `export`, `keys`, `users`, `journeys`, `campaigns` manage data;
//! `backup`, `restore`, `migrate-to` and `secrets rotate` operate a workspace;
//! `bench` measures.

mod bench;
mod bench_campaign;
mod bench_forms;
mod bench_journey_latency;
mod bench_journey_timers;
mod bench_journeys;
mod bench_messages;
mod bench_recommendations;
mod bench_reports;
mod bench_retention;
mod bench_segments;
mod bench_send_time;
mod bench_soak;
mod bench_ui;
mod config;
mod demo;
mod messaging;
mod ops;
mod server;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Overrides, Settings};
use nudge_store::KeyKind;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Ask a running server whether it is ready (`GET /readyz`): exit 0 if it is, 1
    /// if not, saying why. For container and service-manager health checks.
    Health {
        /// The server's base URL. Default: the listen address of these settings
        /// (an unspecified address such as 0.0.0.0 is asked on 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
    },
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
    /// People who sign in to the web UI (passwords are read from standard input).
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Journeys: list them, or install a ready-made one.
    Journeys {
        #[command(subcommand)]
        action: JourneysAction,
    },
    /// Campaigns: list, show, send, pause, resume or cancel one (a running server's
    /// campaign engine picks the change up within a second).
    Campaigns {
        #[command(subcommand)]
        action: CampaignsAction,
    },
    /// Copy a running SQLite workspace to FILE (consistent, with FILE.sha256).
    Backup { file: PathBuf },
    /// Restore a backup made by `nudge backup` (its checksum checked first); the
    /// server must be stopped.
    Restore {
        file: PathBuf,
        /// Replace the workspace's database (kept as nudge.db.replaced-<time>).
        #[arg(long)]
        force: bool,
    },
    /// Copy this SQLite workspace into an empty PostgreSQL database, then check the
    /// copy (row counts, a sample of contacts). The server must be stopped.
    MigrateTo {
        /// postgres://user@host/database
        url: String,
    },
    /// The master key that seals the secrets kept in the database.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Benchmarks (figures in BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

#[derive(Subcommand)]
enum SecretsAction {
    /// Seal every secret with a new master key (written to the key file; the old
    /// one kept beside it). Stop the server first.
    Rotate,
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
enum UsersAction {
    /// List users and their roles.
    List,
    /// Create a user; the password is the first line of standard input.
    Create {
        #[arg(long)]
        email: String,
        /// owner (everything), marketer (no keys or users) or analyst (read-only).
        #[arg(long, value_parser = ["owner", "marketer", "analyst"])]
        role: String,
    },
    /// Delete a user (signs them out everywhere; the last owner stays).
    Delete { email: String },
    /// Set a new password (first line of standard input); ends the user's sessions.
    ResetPassword { email: String },
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

#[derive(Subcommand)]
enum CampaignsAction {
    /// Every campaign, newest first, with its status and progress.
    List,
    /// A campaign's status, progress and report per variant.
    Show { id: i64 },
    /// Send a draft now, or at a time.
    Send {
        id: i64,
        /// When sending starts (RFC 3339, e.g. 2027-03-15T09:00:00+01:00); now when absent.
        #[arg(long)]
        at: Option<String>,
    },
    /// Pause a scheduled or sending campaign.
    Pause { id: i64 },
    /// Resume a paused campaign.
    Resume { id: i64 },
    /// Cancel a campaign for good (what was queued is still delivered).
    Cancel { id: i64 },
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
            // Checked before the database is opened.
            let rows = nudge_app::csv_io::parse_contacts_csv(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let app = cli_app(&settings).await?;
            let report = app.import_contacts(rows).await;
            app.store.close().await;
            let report = report?;
            println!(
                "imported {} rows: {} created, {} updated",
                report.rows, report.created, report.updated
            );
            Ok(())
        }
        Command::Export { output } => {
            let app = cli_app(&settings).await?;
            let csv = app.export_contacts_csv().await;
            app.store.close().await;
            let csv = csv?;
            match output {
                Some(path) => std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{csv}"),
            }
            Ok(())
        }
        Command::Keys { action } => {
            let app = cli_app(&settings).await?;
            let result = keys(&app, action).await;
            app.store.close().await;
            result
        }
        Command::Users { action } => {
            let app = cli_app(&settings).await?;
            let result = users(&app, action).await;
            app.store.close().await;
            result
        }
        Command::Journeys { action } => {
            let app = cli_app(&settings).await?;
            let result = journeys(&app, action).await;
            app.store.close().await;
            result
        }
        Command::Campaigns { action } => {
            let app = cli_app(&settings).await?;
            let result = campaigns(&app, action).await;
            app.store.close().await;
            result
        }
        Command::Health { url } => ops::health(&settings, url.as_deref()).await,
        Command::Backup { file } => ops::backup(&settings, &file),
        Command::Restore { file, force } => ops::restore(&settings, &file, force),
        Command::MigrateTo { url } => ops::migrate_to(&settings, &url).await,
        Command::Secrets {
            action: SecretsAction::Rotate,
        } => ops::rotate(&settings).await,
        Command::Bench { which } => bench::run(which).await,
    }
}

/// The use cases over the configured database, with no workers (the CLI runs none).
async fn cli_app(settings: &Settings) -> anyhow::Result<nudge_app::App> {
    Ok(nudge_app::App::new(
        open(settings).await?,
        Arc::new(nudge_core::SystemClock),
    ))
}

async fn journeys(app: &nudge_app::App, action: JourneysAction) -> anyhow::Result<()> {
    use nudge_app::ready_made_journeys::ready_made_journeys;
    match action {
        JourneysAction::List => {
            println!("{:<6} {:<10} {:<8} name", "id", "status", "version");
            for j in app.store.journeys().await? {
                println!("{:<6} {:<10} {:<8} {}", j.id, j.status.as_str(), j.version, j.name);
            }
            println!("\nready-made (nudge journeys install <key> [--publish]):");
            for r in ready_made_journeys() {
                println!("  {:<24} {}", r.key, r.description);
            }
            Ok(())
        }
        JourneysAction::Install { key, publish } => {
            let j = app.install_ready_made_journey(&key, publish).await?;
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
    }
}

async fn campaigns(app: &nudge_app::App, action: CampaignsAction) -> anyhow::Result<()> {
    use nudge_app::campaigns::CampaignAction;
    let line = |c: &nudge_store::Campaign| {
        format!(
            "{:<6} {:<10} {:>9} {:>9} {:>9} {:>9}  {}",
            c.id,
            c.status.as_str(),
            c.audience,
            c.queued,
            c.skipped,
            c.pending(),
            c.name
        )
    };
    let header = format!(
        "{:<6} {:<10} {:>9} {:>9} {:>9} {:>9}  name",
        "id", "status", "audience", "queued", "skipped", "pending"
    );
    let c = match action {
        CampaignsAction::List => {
            println!("{header}");
            for c in app.campaigns().await? {
                println!("{}", line(&c));
            }
            return Ok(());
        }
        CampaignsAction::Show { id } => {
            let r = app.campaign_report(id).await?;
            println!("{header}\n{}", line(&r.campaign));
            if let Some(start) = r.campaign.start_at {
                println!("starts {}", nudge_core::format_millis(start));
            }
            println!("held out: {}", r.holdout.recipients);
            let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
            println!(
                "\n{:<4} {:<20} {:>10} {:>9} {:>9} {:>9} {:>9}",
                "var", "name", "recipients", "delivered", "bounced", "opened", "clicked"
            );
            for v in &r.variants {
                println!(
                    "{:<4} {:<20} {:>10} {:>9} {:>9} {:>9} {:>9}{}",
                    v.variant,
                    v.name,
                    v.counts.recipients,
                    v.counts.delivered,
                    v.counts.bounced,
                    pct(v.open_rate),
                    pct(v.click_rate),
                    if v.winner { "  (winner)" } else { "" }
                );
            }
            if let Some(t) = &r.test {
                let metric = serde_json::to_value(t.metric)?;
                println!(
                    "\nA/B test on {}, {} % of the audience",
                    metric.as_str().unwrap_or("?"),
                    t.share
                );
                for v in &r.variants {
                    if let Some(s) = &v.stats {
                        println!(
                            "  {:<20} {} [{} – {}], probability to be best {:.3}",
                            v.name,
                            pct(Some(s.rate)),
                            pct(Some(s.ci_low)),
                            pct(Some(s.ci_high)),
                            s.probability_to_be_best
                        );
                    }
                }
                if let Some(d) = &t.decision {
                    println!("  decided by: {}", d["decided_by"]);
                }
                if let Some(note) = t.note {
                    println!("  note: {note}");
                }
            }
            return Ok(());
        }
        CampaignsAction::Send { id, at } => {
            let schedule = match at {
                None => nudge_core::campaign::Schedule::Now,
                Some(at) => nudge_app::campaigns::schedule(&serde_json::json!({"type": "at", "at": at}))?,
            };
            app.send_campaign(id, schedule).await?
        }
        CampaignsAction::Pause { id } => app.campaign_action(id, CampaignAction::Pause).await?,
        CampaignsAction::Resume { id } => app.campaign_action(id, CampaignAction::Resume).await?,
        CampaignsAction::Cancel { id } => app.campaign_action(id, CampaignAction::Cancel).await?,
    };
    println!("campaign {} \"{}\" is {}", c.id, c.name, c.status.as_str());
    Ok(())
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!(
            "password (at least {} characters): ",
            nudge_app::accounts::MIN_PASSWORD_CHARS
        );
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "no password on standard input (e.g. `printf '%s\\n' \"$PASSWORD\" | nudge users ...`)"
    );
    Ok(password)
}

async fn users(app: &nudge_app::App, action: UsersAction) -> anyhow::Result<()> {
    use nudge_app::accounts;
    let store = &*app.store;
    let now = app.clock.now();
    match action {
        UsersAction::List => {
            println!("{:>5}  {:<9}  {:<25}  email", "id", "role", "created");
            for u in store.users().await? {
                println!(
                    "{:>5}  {:<9}  {:<25}  {}",
                    u.id,
                    u.role.as_str(),
                    nudge_core::format_millis(u.created_at),
                    u.email
                );
            }
        }
        UsersAction::Create { email, role } => {
            let role = nudge_core::access::Role::parse(&role).context("role must be owner, marketer or analyst")?;
            let password = password_from_stdin()?;
            let user = accounts::create_user(store, &email, role, &password, now).await?;
            println!("created {} {} (user {})", user.role.as_str(), user.email, user.id);
        }
        UsersAction::Delete { email } => {
            let user = accounts::find_user(store, &email).await?;
            accounts::delete_user(store, user.id).await?;
            println!("deleted {}", user.email);
        }
        UsersAction::ResetPassword { email } => {
            let user = accounts::find_user(store, &email).await?;
            let password = password_from_stdin()?;
            accounts::reset_password(store, user.id, &password, now).await?;
            println!("set a new password for {}; their sessions have ended", user.email);
        }
    }
    Ok(())
}

async fn keys(app: &nudge_app::App, action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::List => {
            println!(
                "{:>5}  {:<6}  {:<10}  {:<25}  {:<25}  name",
                "id", "kind", "prefix", "created", "revoked"
            );
            for k in app.list_keys().await? {
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
            let (key, secret) = app.create_key(kind, &name).await?;
            println!(
                "created {} key {} ({}); its secret, shown only now:\n{secret}",
                kind.as_str(),
                key.id,
                key.name
            );
        }
        KeysAction::Revoke { id } => {
            match app.revoke_key(id).await {
                Err(nudge_app::AppError::NotFound { .. }) => anyhow::bail!("no active key with id {id}"),
                other => other?,
            }
            println!("revoked key {id}");
        }
    }
    Ok(())
}

/// The workspace's store, its secrets opened with the master key
/// ([`Settings::master_key`]: created on first start).
pub async fn open(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn nudge_store::Store>> {
    let ring = nudge_store::secrets::Keyring::new(settings.master_key()?);
    nudge_store::open(settings.database_url(), &settings.data_dir, ring)
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
