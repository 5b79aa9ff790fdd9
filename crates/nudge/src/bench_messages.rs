//! `nudge bench render` and `nudge bench email`.
//!
//! `render`: personalised MJML + Liquid emails built per second — the template
//! (`bench/mjml/order.mjml`) compiled once, then per contact Liquid, the unsubscribe
//! footer, click-tracking links and the open pixel, on every core — against, in the
//! same run, the mjml npm library with liquidjs rendering the same template for the
//! same contacts (`bench/mjml/render.mjs`, one process per core), and against Nudge
//! without its compile-once step (Liquid, MJML, CSS inlining and text per message).
//!
//! `email`: messages per second from the outbox to a local SMTP server (Postfix's
//! `smtp-sink`) through the whole delivery worker (claim, consent, render, SMTP,
//! record), against Postfix's `smtp-source` sending the same number of messages of
//! the same size to the same server in the same run.

use anyhow::{Context, bail};
use clap::Args;
use nudge_core::{Clock, SystemClock};
use nudge_messages::channel::smtp::{Smtp, SmtpConfig};
use nudge_messages::delivery::{ChannelSlot, Deliverer, DeliveryConfig, Tracking, decorate};
use nudge_messages::links::Signer;
use nudge_messages::template::{self, Content, EmailContent, RenderData, Rendered};
use nudge_store::{ContactImport, NewMessage, NewTemplate, Store};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Clone)]
pub struct RenderArgs {
    /// Messages to build.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Threads (and Node.js processes) to use; default: the machine's cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Messages for the slow "no compile-once" variant.
    #[arg(long, default_value_t = 300)]
    uncached: usize,
    /// Skip the mjml npm comparison.
    #[arg(long)]
    no_node: bool,
}

#[derive(Args, Clone)]
pub struct EmailArgs {
    /// Messages to deliver.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// SMTP connections (Nudge's pool, and smtp-source's parallel sessions).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Directory of Postfix's smtp-sink and smtp-source.
    #[arg(long, default_value = "/usr/sbin")]
    postfix_bin: PathBuf,
}

pub(crate) fn repo_file(rel: &str) -> anyhow::Result<PathBuf> {
    let mut dir = std::env::current_dir()?;
    loop {
        let candidate = dir.join(rel);
        if candidate.exists() {
            return Ok(candidate);
        }
        if !dir.pop() {
            bail!("{rel} not found: run the benchmark from the Nudge repository");
        }
    }
}

/// Contacts and order events for the template: varied names, cities, 1-5 items.
fn sample_data(n: usize) -> Vec<Value> {
    let names = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim",
    ];
    let cities = [
        "London", "Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Madrid", "Vienna",
    ];
    let products = ["Green tea", "Teapot", "Cup", "Honey", "Biscuits", "Kettle", "Infuser"];
    (0..n)
        .map(|i| {
            let items: Vec<Value> = (0..(1 + i % 5))
                .map(|k| {
                    json!({"name": products[(i + k) % products.len()], "quantity": 1 + (i + k) % 3,
                           "price": format!("{}.{:02}", 3 + (i * 7 + k) % 40, (i + k * 13) % 100)})
                })
                .collect();
            json!({
                "contact": {"id": i, "email": format!("c{i}@example.com"),
                            "traits": {"first_name": names[i % names.len()], "city": cities[i % cities.len()]}},
                "event": {"name": "Order Completed", "properties": {
                    "order_id": format!("A-{:06}", i), "items": items, "total": format!("{}.{:02}", 10 + i % 200, i % 100),
                    "coupon": if i % 4 == 0 { Value::String("spring10".into()) } else { Value::Null }}},
                "workspace": {"name": "Tea Shop"},
            })
        })
        .collect()
}

fn order_content(mjml: &str) -> Content {
    Content::Email(EmailContent {
        subject: "Your order {{ event.properties.order_id }} is confirmed".into(),
        preheader: Some("Thanks, {{ contact.traits.first_name }}".into()),
        mjml: Some(mjml.to_string()),
        ..Default::default()
    })
}

fn render_data(d: &Value) -> RenderData {
    RenderData {
        contact: d["contact"].clone(),
        event: d["event"].clone(),
        workspace: d["workspace"].clone(),
        message: json!({"id": 1}),
        extra: serde_json::Map::new(),
    }
}

pub fn render(args: RenderArgs) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let template_path = repo_file("bench/mjml/order.mjml")?;
    let mjml = std::fs::read_to_string(&template_path)?;
    let data = sample_data(args.messages);
    let content = order_content(&mjml);
    let signer = Signer::new(b"bench-key-bench-key-bench-key-32");

    // Nudge: compile once, build every message.
    let started = Instant::now();
    let compiled = template::compile(&content).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let bytes: usize = std::thread::scope(|s| {
        let chunk = data.len().div_ceil(threads);
        let handles: Vec<_> = data
            .chunks(chunk)
            .enumerate()
            .map(|(t, part)| {
                let (compiled, signer) = (&compiled, &signer);
                s.spawn(move || {
                    let tracking = Tracking {
                        base: "https://nudge.example",
                        signer,
                        opens: true,
                        clicks: true,
                    };
                    let mut bytes = 0;
                    for (i, d) in part.iter().enumerate() {
                        let rendered = compiled.render(&render_data(d)).expect("renders");
                        let id = (t * chunk + i) as i64;
                        let (email, _links, _headers) = decorate(&tracking, id, true, rendered);
                        if let Rendered::Email { html, text, .. } = email {
                            bytes += html.len() + text.len();
                        }
                    }
                    bytes
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("render thread")).sum()
    });
    let secs = started.elapsed().as_secs_f64();
    let nudge_rate = args.messages as f64 / secs;
    println!(
        "nudge (compiled once, {threads} threads): {} messages in {secs:.2} s = {nudge_rate:.0} messages/s \
         (avg {:.1} KB html+text; compile {compile_ms:.1} ms)",
        args.messages,
        bytes as f64 / args.messages as f64 / 1024.0
    );

    // Nudge without compile-once: Liquid on the MJML, then MJML, CSS and text, per message.
    let n = args.uncached.min(data.len());
    let started = Instant::now();
    for d in &data[..n] {
        let mjml_src = template::render_liquid(
            &mjml,
            &json!({"contact": d["contact"], "event": d["event"], "workspace": d["workspace"]}),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let html = template::html::mjml_to_html(&mjml_src).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let html = template::html::inline_css(&html).map_err(anyhow::Error::msg)?;
        std::hint::black_box(template::html::html_to_text(&html));
    }
    let secs = started.elapsed().as_secs_f64();
    let uncached_rate = n as f64 / secs * threads as f64;
    println!(
        "nudge without compile-once (1 thread, {n} messages): {:.0} messages/s per thread, ~{uncached_rate:.0}/s on {threads}",
        n as f64 / secs
    );

    if args.no_node {
        return Ok(());
    }
    let dir = template_path.parent().expect("bench/mjml");
    if !dir.join("node_modules/mjml").exists() {
        bail!(
            "the mjml comparison needs its packages: cd {} && npm ci   (or pass --no-node)",
            dir.display()
        );
    }
    let data_file = tempfile::NamedTempFile::new()?;
    std::fs::write(data_file.path(), serde_json::to_vec(&data)?)?;
    let started = Instant::now();
    let chunk = data.len().div_ceil(threads);
    let children: Vec<_> = (0..threads)
        .map(|t| {
            Command::new("node")
                .arg(dir.join("render.mjs"))
                .arg(&template_path)
                .arg(data_file.path())
                .arg((t * chunk).to_string())
                .arg(((t + 1) * chunk).min(data.len()).to_string())
                .stdout(Stdio::piped())
                .spawn()
                .context("running node (Node.js 20+)")
        })
        .collect::<anyhow::Result<_>>()?;
    let mut rendered = 0u64;
    for c in children {
        let out = c.wait_with_output()?;
        if !out.status.success() {
            bail!("render.mjs failed");
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("render.mjs output")?;
        rendered += v["messages"].as_u64().unwrap_or(0);
    }
    let secs = started.elapsed().as_secs_f64();
    let node_rate = rendered as f64 / secs;
    println!(
        "mjml npm {} + liquidjs ({threads} processes): {rendered} messages in {secs:.2} s = {node_rate:.0} messages/s",
        mjml_version(dir)
    );
    println!("ratio nudge / mjml npm: {:.1}x", nudge_rate / node_rate);
    Ok(())
}

fn mjml_version(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("node_modules/mjml/package.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A child process killed when dropped.
pub(crate) struct Child(std::process::Child);
impl Child {
    pub(crate) fn new(child: std::process::Child) -> Self {
        Child(child)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Postfix's `smtp-sink` on a free port (from `bin`), once it accepts connections.
pub(crate) fn start_sink(bin: &Path) -> anyhow::Result<(Child, u16)> {
    let port = free_port()?;
    let child = Command::new(bin.join("smtp-sink"))
        .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "1024"])
        .spawn()
        .with_context(|| format!("running {}/smtp-sink (apt-get install postfix)", bin.display()))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("smtp-sink did not start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok((Child(child), port))
}

/// Delivers up to `limit` queued messages through the delivery worker (claim, consent,
/// render, decorate, SMTP over `connections` to the sink on `port`, grouped outcome
/// records): how many, and in how many seconds.
pub(crate) async fn deliver(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    port: u16,
    connections: usize,
    limit: usize,
) -> anyhow::Result<(usize, f64)> {
    let smtp = Smtp::new(&SmtpConfig {
        url: format!("smtp://127.0.0.1:{port}"),
        from: "Tea Shop <shop@example.com>".into(),
        pool_size: connections as u32,
        dkim: None,
    })
    .map_err(anyhow::Error::msg)?;
    let deliverer = Deliverer::new(
        store,
        clock,
        vec![ChannelSlot::new(Arc::new(smtp), connections, None)],
        Signer::new(b"bench-key-bench-key-bench-key-32"),
        DeliveryConfig {
            public_url: "https://nudge.example".into(),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let mut delivered = 0;
    while delivered < limit {
        let n = deliverer.clone().run_once().await?;
        if n == 0 {
            break;
        }
        delivered += n;
    }
    Ok((delivered, started.elapsed().as_secs_f64()))
}

/// Postfix's `smtp-source` sending `n` messages of `size` bytes over `sessions` to the
/// sink on `port`: how many seconds it took.
pub(crate) fn smtp_source(bin: &Path, port: u16, sessions: usize, n: usize, size: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(bin.join("smtp-source"))
        .args([
            "-s",
            &sessions.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            &size.to_string(),
        ])
        .args([
            "-f",
            "shop@example.com",
            "-t",
            "c0@example.com",
            &format!("127.0.0.1:{port}"),
        ])
        .status()
        .context("running smtp-source")?;
    if !status.success() {
        bail!("smtp-source failed");
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn email(args: EmailArgs) -> anyhow::Result<()> {
    let mjml = std::fs::read_to_string(repo_file("bench/mjml/order.mjml")?)?;
    let (_sink, port) = start_sink(&args.postfix_bin)?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(nudge_store::SqliteStore::open(&dir.path().join("nudge.db")).await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let data = sample_data(args.messages);
    let rows = (0..args.messages)
        .map(|i| ContactImport {
            user_id: Some(format!("c{i}")),
            email: Some(format!("c{i}@example.com")),
            traits: data[i]["contact"]["traits"].as_object().cloned().unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    store.import_contacts(rows, now).await?;
    let t = store
        .create_template(
            NewTemplate {
                name: "order".into(),
                description: String::new(),
                channel: "email".into(),
                transactional: false,
                topic: None,
                content: serde_json::to_value(order_content(&mjml))?,
            },
            now,
        )
        .await?;
    let first = store
        .list_contacts(&Default::default())
        .await?
        .items
        .first()
        .map(|c| c.id)
        .unwrap_or(1);
    // Queued as a campaign would: 1,000 sends per transaction.
    let started = Instant::now();
    let all: Vec<NewMessage> = data
        .iter()
        .enumerate()
        .map(|(i, d)| NewMessage {
            idempotency_key: format!("bench-{i}"),
            contact_id: first + i as i64,
            template_id: t.id,
            template_version: t.version,
            channel: "email".into(),
            transactional: false,
            data: json!({"event": d["event"]}),
            origin: None,
        })
        .collect();
    for chunk in all.chunks(1000) {
        store.enqueue_messages(chunk.to_vec(), now).await?;
    }
    println!(
        "queued {} messages in {:.1} s",
        args.messages,
        started.elapsed().as_secs_f64()
    );

    let (delivered, secs) = deliver(store.clone(), clock, port, args.connections, args.messages).await?;
    let sent = store
        .list_messages(&nudge_store::MessageQuery {
            state: Some(nudge_store::MessageState::Sent),
            limit: 1,
            ..Default::default()
        })
        .await?;
    if sent.items.is_empty() {
        bail!("no message was sent; is smtp-sink running?");
    }
    let nudge_rate = delivered as f64 / secs;
    println!(
        "nudge (render + SMTP + record, {} connections): {delivered} messages in {secs:.2} s = {nudge_rate:.0} messages/s",
        args.connections
    );

    // The same number of messages, of the size Nudge sends, by smtp-source.
    let size = {
        let rendered = template::compile(&order_content(&mjml))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .render(&render_data(&data[0]))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match rendered {
            Rendered::Email { html, text, .. } => html.len() + text.len(),
            _ => 20_000,
        }
    };
    let secs = smtp_source(&args.postfix_bin, port, args.connections, args.messages, size)?;
    let source_rate = args.messages as f64 / secs;
    println!(
        "postfix smtp-source ({} sessions, {size}-byte messages): {} messages in {secs:.2} s = {source_rate:.0} messages/s",
        args.connections, args.messages
    );
    println!("ratio nudge / smtp-source: {:.2}x", nudge_rate / source_rate);
    Ok(())
}
