//! `nudge bench ui`: server time per page of the web UI on a large SQLite workspace
//! (by default 1,000,000 contacts and 11,000,000 events, the shop of `bench
//! segments`, its contacts given names and a third of them phone numbers), and what a
//! page downloads in scripts and styles.
//!
//! The workspace is generated once into `--data-dir` (reused when it exists, and then
//! migrated by the binary that runs), with the ready-made segments (computed before
//! measuring), a live journey with statistics, and one contact with 1,000 events. A real `nudge serve` runs on it; an owner signs
//! in, and each page is fetched `--requests` times in turn by one client over
//! loopback, so a figure is the server's time plus a loopback round trip.

use crate::bench::percentile;
use crate::bench_segments::generate;
use anyhow::Context;
use clap::Args;
use nudge_core::{Call, CallKind, Millis};
use nudge_store::{JourneyStore, SqliteStore, Store};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct UiArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: usize,
    /// Track events besides one identify per contact (and the profile contact's 1,000).
    #[arg(long, default_value_t = 10_000_000)]
    pub events: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Where the workspace is generated (kept and reused).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// Names of the generated contacts: `FIRST[i % 40]` and `LAST[(i / 40) % 50]`, so each
/// of the 2,000 pairs names one contact in 2,000, spread over all ids.
const FIRST: [&str; 40] = [
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Dennis", "Maryam", "Ali",
    "Sara", "Reza", "Leila", "Omar", "Fatima", "Yusuf", "Noa", "Yael", "Avi", "Tamar", "Lucia", "Mateo", "Chloé",
    "Jürgen", "Ingrid", "Sven", "Aiko", "Kenji", "Mei", "Wei", "Priya", "Arjun", "Amara", "Kwame", "Olga", "Ivan",
    "Zeynep", "Emre",
];
const LAST: [&str; 50] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Ritchie",
    "Mirzakhani",
    "Rezaei",
    "Ahmadi",
    "Karimi",
    "Hosseini",
    "Haddad",
    "Khalil",
    "Nasser",
    "Mansour",
    "Saleh",
    "Cohen",
    "Levi",
    "Mizrahi",
    "Peretz",
    "Biton",
    "García",
    "Fernández",
    "Rossi",
    "Dubois",
    "Müller",
    "Schmidt",
    "Larsen",
    "Nilsson",
    "Tanaka",
    "Suzuki",
    "Wang",
    "Li",
    "Sharma",
    "Patel",
    "Okafor",
    "Mensah",
    "Ivanova",
    "Petrov",
    "Yılmaz",
    "Kaya",
    "Novak",
    "Kowalski",
    "Silva",
    "Santos",
    "O'Brien",
];

/// The name (and for a third of them the phone) of generated contact `c{i}`.
fn name_traits(m: &mut Call) {
    let Some(i) = m
        .user_id
        .as_deref()
        .and_then(|u| u.strip_prefix('c')?.parse::<usize>().ok())
    else {
        return;
    };
    m.traits.insert("first_name".into(), json!(FIRST[i % FIRST.len()]));
    m.traits
        .insert("last_name".into(), json!(LAST[(i / FIRST.len()) % LAST.len()]));
    if i % 3 == 0 {
        m.traits.insert(
            "phone".into(),
            json!(format!("+1 555 {:03} {:04}", i / 10_000, i % 10_000)),
        );
    }
}

const OWNER: &str = "bench-owner@shop.example";
const PASSWORD: &str = "bench password 0123";
const PROFILE_USER: &str = "profile-1000";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &std::path::Path) -> anyhow::Result<(Server, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("NUDGE_LOG", "warn")
        .env_remove("NUDGE_DATABASE_URL")
        .env_remove("NUDGE_CONFIG")
        .env_remove("NUDGE_SECRET_KEY")
        .env_remove("NUDGE_SECRET_KEY_FILE")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting nudge serve")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("nudge listening on ") {
            let url = rest.split_whitespace().next().unwrap_or_default().to_string();
            std::thread::spawn(move || for _ in lines {});
            return Ok((server, url));
        }
    }
    anyhow::bail!("the server exited before listening")
}

/// The master key of the workspace in `dir`, the one `nudge serve` uses there (its
/// default key file), so the benchmark and the server open each other's secrets.
fn workspace_keyring(dir: &std::path::Path) -> anyhow::Result<nudge_store::secrets::Keyring> {
    let (key, _) = nudge_store::secrets::KeyFile::new(dir.join("secret.key")).read_or_create()?;
    Ok(nudge_store::secrets::Keyring::new(key))
}

/// The workspace: the generated shop, ready-made segments computed, a live journey,
/// the profile contact, the owner.
async fn prepare(dir: &std::path::Path, args: &UiArgs, now: Millis) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("nudge.db");
    let fresh = !path.exists();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with(&path, workspace_keyring(dir)?).await?);
    if fresh {
        let started = Instant::now();
        for mut chunk in generate(args.contacts, args.events, now) {
            for m in chunk.iter_mut().filter(|m| m.kind == CallKind::Identify) {
                name_traits(m);
            }
            store.ingest(chunk, now).await?;
        }
        // One contact with 1,000 events, for the profile page.
        let mut calls = Vec::with_capacity(1001);
        let mut identify = Call::generated(
            CallKind::Identify,
            "profile-identify".into(),
            Some(PROFILE_USER.into()),
            now,
        );
        identify.traits = json!({"email": "profile@example.com", "first_name": "Ada"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        calls.push(identify);
        for i in 0..1000 {
            let mut m = Call::generated(
                CallKind::Track,
                format!("profile-{i}"),
                Some(PROFILE_USER.into()),
                now - i * 60_000,
            );
            m.event = Some(["Product Viewed", "Product Added", "Order Completed"][i as usize % 3].into());
            m.properties = json!({"product_id": format!("p{i}"), "price": 20 + i % 50})
                .as_object()
                .cloned()
                .unwrap_or_default();
            calls.push(m);
        }
        store.ingest(calls, now).await?;
        eprintln!(
            "generated {} contacts and {} events in {:.0} s",
            args.contacts,
            args.events + 1000,
            started.elapsed().as_secs_f64()
        );
    }
    if store.segments().await?.is_empty() {
        for r in nudge_core::segment::ready_made()
            .into_iter()
            .filter(|r| !r.administrative)
        {
            store
                .create_segment(
                    nudge_store::NewSegment {
                        name: r.name.into(),
                        description: r.description.into(),
                        definition: r.definition,
                        administrative: false,
                    },
                    now,
                )
                .await?;
        }
    }
    // Memberships kept by the segment engine, worked off before measuring (the pages
    // are measured on a workspace at rest, not while a million contacts are evaluated).
    {
        let started = Instant::now();
        let clock: Arc<dyn nudge_core::Clock> = Arc::new(nudge_core::SystemClock);
        let engine = nudge_engine::SegmentEngine::new(store.clone(), clock, Default::default());
        let mut evaluated = 0;
        loop {
            let (n, _) = engine.run_once().await?;
            if n == 0 {
                break;
            }
            evaluated += n;
        }
        if evaluated > 0 {
            eprintln!(
                "evaluated {evaluated} contacts' segments in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    if store.journeys().await?.is_empty() {
        nudge_app::ready_made_journeys::install(&*store, "abandoned_cart", true, now)
            .await
            .map_err(|e| anyhow::anyhow!("installing a journey: {e}"))?;
    }
    if store.user_credentials(OWNER).await?.is_none() {
        nudge_app::accounts::create_user(&*store, OWNER, nudge_core::access::Role::Owner, PASSWORD, now)
            .await
            .map_err(|e| anyhow::anyhow!("creating the owner: {e}"))?;
    }
    store.close().await;
    Ok(())
}

pub async fn run(args: UiArgs) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().as_millisecond();
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("nudge-bench-ui"));
    prepare(&dir, &args, now).await?;
    let (_server, base) = start(&dir)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = http
        .post(format!("{base}/sign-in"))
        .form(&[("email", OWNER), ("password", PASSWORD), ("next", "/")])
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("signing in gave no session cookie")?
        .to_string();
    // The profile contact and the journey, by their pages' links.
    let store = SqliteStore::open_with(&dir.join("nudge.db"), workspace_keyring(&dir)?).await?;
    let profile = store
        .find_contact(&nudge_store::Lookup::UserId(PROFILE_USER.into()))
        .await?
        .context("the profile contact")?
        .id;
    let journey = store.journeys().await?.first().map(|j| j.id).context("a journey")?;
    store.close().await;
    let pages = [
        ("dashboard", "/".to_string()),
        ("contact search (user id)", "/contacts?q=c4242".to_string()),
        ("contact search (contains)", "/contacts?q=c4242&contains=1".to_string()),
        // One contact in 2,000 ("Maryam Rezaei"), a term in every contact, a term in
        // none, a phone typed with spaces, two letters (word starts).
        ("search: part of a name", "/contacts?q=ryam+reza".to_string()),
        ("search: in every contact", "/contacts?q=example.com".to_string()),
        ("search: in no contact", "/contacts?q=zqxj".to_string()),
        ("search: phone", "/contacts?q=555+004+242".to_string()),
        ("search: 2 letters", "/contacts?q=Mi".to_string()),
        ("profile (1,000 events)", format!("/contacts/{profile}")),
        ("segments list", "/segments".to_string()),
        ("journey with stats", format!("/journeys/{journey}")),
    ];
    println!(
        "web UI, {} contacts / {} events (SQLite, {}), {} requests per page, one client:",
        args.contacts,
        args.events + args.contacts + 1001,
        dir.display(),
        args.requests
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>10}",
        "page", "p50 ms", "p99 ms", "max ms", "bytes"
    );
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        for i in 0..args.requests + 5 {
            let started = Instant::now();
            let resp = http
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
            bytes = resp.bytes().await?.len();
            if i >= 5 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        println!(
            "{name:<28} {:>9.1} {:>9.1} {:>9.1} {bytes:>10}",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0)
        );
    }
    println!(
        "scripts and styles a page loads, gzip-compressed: {:.1} KB (htmx, app.js, app.css)",
        nudge_web::assets::compressed_total() as f64 / 1024.0
    );
    Ok(())
}
