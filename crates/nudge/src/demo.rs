//! `nudge demo`: the server on the embedded database in a data directory of its own,
//! filled on first start with a believable shop: visitors browsing, signing up,
//! filling carts, buying (with coupons), abandoning carts.

use crate::config::{Overrides, Secret, Settings};
use anyhow::Context;
use nudge_core::protocol::MessageEvent;
use nudge_core::{Call, CallKind, Millis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::path::Path;

const DAY: Millis = 86_400_000;

pub async fn run(mut settings: Settings, overrides: &Overrides, contacts: usize) -> anyhow::Result<()> {
    if overrides.data_dir.is_none() && std::env::var_os("NUDGE_DATA_DIR").is_none() {
        settings.data_dir = "nudge-demo".into();
    }
    settings.database_url = None;
    // The demo's contacts are made up: its email and SMS stay in the capture channel.
    settings.smtp_url = None;
    settings.sms_url = None;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let (admin, write) = demo_keys(&settings.data_dir)?;
    settings.admin_key.get_or_insert(Secret(admin));
    settings.write_key.get_or_insert(Secret(write));

    let store = crate::open(&settings).await?;
    if store.stats().await?.contacts == 0 {
        let now = jiff::Timestamp::now().as_millisecond();
        let messages = shop(contacts, now, 42);
        let n = messages.len();
        eprintln!("filling the demo shop: {contacts} contacts, {n} events ...");
        for chunk in messages.chunks(5000) {
            store.ingest(chunk.to_vec(), now).await?;
        }
    }
    if store.segments().await?.is_empty() {
        let now = jiff::Timestamp::now().as_millisecond();
        for r in nudge_core::segment::ready_made() {
            store
                .create_segment(
                    nudge_store::NewSegment {
                        name: r.name.into(),
                        description: r.description.into(),
                        definition: r.definition,
                        administrative: r.administrative,
                    },
                    now,
                )
                .await?;
        }
    }
    let sent = if store.templates().await?.is_empty() {
        let sent = welcome_messages(&*store).await?;
        newsletter_history(&*store, 42).await?;
        sent
    } else {
        0
    };
    if store.journeys().await?.is_empty() {
        let now = jiff::Timestamp::now().as_millisecond();
        for key in [
            "welcome",
            "abandoned_cart",
            "browse_abandonment",
            "cross_sell",
            "vip",
            "win_back",
            "birthday",
        ] {
            nudge_app::ready_made_journeys::install(&*store, key, true, now)
                .await
                .map_err(|e| anyhow::anyhow!("installing the {key} journey: {e}"))?;
        }
    }
    let (owner_email, owner_password) = demo_owner(&settings.data_dir, &*store).await?;
    let journeys = store.journeys().await?.len();
    let segments = store.segments().await?.len();
    let stats = store.stats().await?;
    store.close().await;

    let (admin, write) = (
        settings.admin_key.clone().unwrap_or_default().0,
        settings.write_key.clone().unwrap_or_default().0,
    );
    let dir = settings.data_dir.display().to_string();
    crate::server::serve(
        settings,
        Some(Box::new(move |addr| {
            println!();
            println!(
                "  Nudge demo is running at http://{addr}  (data in {dir}: {} contacts, {} events, {segments} live segments, {journeys} live journeys)",
                stats.contacts, stats.events
            );
            println!();
            println!("  open http://{addr}/ and sign in as {owner_email} with password {owner_password}");
            println!();
            println!("  admin key: {admin}");
            println!("  write key: {write}");
            println!();
            println!("  try:  curl -H 'Authorization: Bearer {admin}' 'http://{addr}/api/v1/contacts?limit=3'");
            println!("        curl -H 'Authorization: Bearer {admin}' 'http://{addr}/api/v1/segments'");
            println!("        curl -H 'Authorization: Bearer {admin}' 'http://{addr}/api/v1/journeys'");
            if sent > 0 {
                println!("        curl -H 'Authorization: Bearer {admin}' 'http://{addr}/api/v1/messages?limit=3'   # {sent} welcome emails, captured");
            }
            println!(
                "        curl -u '{write}:' -H 'content-type: application/json' http://{addr}/v1/track \\\n             -d '{{\"userId\": \"demo-1\", \"event\": \"Cart Updated\", \"properties\": {{\"cart_id\": \"c-1\", \"products\": [{{\"name\": \"Linen Shirt\"}}]}}}}'   # starts the abandoned-cart journey"
            );
            println!("  stop with Ctrl-C");
            println!();
        })),
    )
    .await
}

/// Installs the demo's templates (a marketing welcome email in MJML and a
/// transactional receipt) and queues the welcome email for the first contacts with
/// an email address; the server delivers them to the capture channel. Returns how
/// many were queued.
async fn welcome_messages(store: &dyn nudge_store::Store) -> anyhow::Result<usize> {
    let now = jiff::Timestamp::now().as_millisecond();
    let welcome = store
        .create_template(
            nudge_store::NewTemplate {
                name: "Welcome".into(),
                description: "First email after sign-up".into(),
                channel: "email".into(),
                transactional: false,
                topic: Some("newsletter".into()),
                content: json!({
                    "channel": "email",
                    "subject": "Welcome to the shop, {{ contact.traits.first_name | default: 'friend' }}",
                    "preheader": "Your 10% code is inside",
                    "mjml": WELCOME_MJML,
                }),
            },
            now,
        )
        .await?;
    store
        .create_template(
            nudge_store::NewTemplate {
                name: "Order receipt".into(),
                description: "Sent after every order".into(),
                channel: "email".into(),
                transactional: true,
                topic: None,
                content: json!({
                    "channel": "email",
                    "subject": "Your order {{ event.properties.order_id }}",
                    "html": "<p>Thanks {{ contact.traits.first_name | default: 'for your order' }}!</p><p>Total: {{ event.properties.total }} {{ event.properties.currency | default: 'EUR' }}</p>",
                }),
            },
            now,
        )
        .await?;
    let page = store
        .list_contacts(&nudge_store::ContactQuery {
            limit: 200,
            ..Default::default()
        })
        .await?;
    let mut queued = 0;
    for c in page.items.iter().filter(|c| c.email.is_some()).take(5) {
        store
            .enqueue_message(
                nudge_store::NewMessage {
                    idempotency_key: format!("demo-welcome-{}", c.id),
                    contact_id: c.id,
                    template_id: welcome.id,
                    template_version: welcome.version,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: None,
                },
                now,
            )
            .await?;
        queued += 1;
    }
    Ok(queued)
}

/// A month of weekly-ish newsletters to part of the shop, delivered, opened and
/// clicked at realistic rates, so the dashboard has a history to show. They go through
/// the store like real deliveries (enqueued, sent, then open and click events), so the
/// hourly counts come from the same rules.
async fn newsletter_history(store: &dyn nudge_store::Store, seed: u64) -> anyhow::Result<()> {
    use nudge_store::{MessageState, MessageUpdate, NewMessage, NewTemplate};
    let now = jiff::Timestamp::now().as_millisecond();
    let day = 24 * 3600 * 1000;
    let news = store
        .create_template(
            NewTemplate {
                name: "Newsletter".into(),
                description: "The shop's news, a few times a week".into(),
                channel: "email".into(),
                transactional: false,
                topic: Some("newsletter".into()),
                content: json!({
                    "channel": "email",
                    "subject": "New this week at the shop, {{ contact.traits.first_name | default: 'friend' }}",
                    "mjml": WELCOME_MJML,
                }),
            },
            now - 31 * day,
        )
        .await?;
    let contacts: Vec<i64> = store
        .list_contacts(&nudge_store::ContactQuery {
            limit: 1000,
            ..Default::default()
        })
        .await?
        .items
        .into_iter()
        .filter(|c| c.email.is_some())
        .map(|c| c.id)
        .collect();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f64 / 10_000.0
    };
    for days_ago in (1..=30i64).rev() {
        // Sent on Mondays, Wednesdays and Fridays of the demo's calendar, to a share of the shop.
        if days_ago % 7 != 1 && days_ago % 7 != 3 && days_ago % 7 != 5 {
            continue;
        }
        let at = now - days_ago * day;
        let recipients: Vec<i64> = contacts.iter().copied().filter(|_| next() < 0.3).collect();
        let new: Vec<NewMessage> = recipients
            .iter()
            .map(|c| NewMessage {
                idempotency_key: format!("demo-newsletter-{days_ago}-{c}"),
                contact_id: *c,
                template_id: news.id,
                template_version: news.version,
                channel: "email".into(),
                transactional: false,
                data: json!({}),
                origin: None,
            })
            .collect();
        let queued = store.enqueue_messages(new, at).await?;
        let updates = queued
            .iter()
            .map(|(m, _)| MessageUpdate {
                id: m.id,
                state: MessageState::Sent,
                retry_at: None,
                recipient: None,
                error: None,
                rendered: Some(json!({"subject": "New this week at the shop"})),
                suppress: None,
                provider_id: None,
            })
            .collect();
        store.update_messages(updates, at + 60_000).await?;
        for (m, _) in &queued {
            if next() < 0.42 {
                let opened = at + 600_000 + (next() * 8.0 * 3_600_000.0) as i64;
                store
                    .record_message_event(m.id, &MessageEvent::Opened, format!("demo-open-{}", m.id), opened)
                    .await?;
                if next() < 0.3 {
                    store
                        .record_message_event(
                            m.id,
                            &MessageEvent::Clicked {
                                link: 0,
                                url: "https://shop.example/new".into(),
                            },
                            format!("demo-click-{}", m.id),
                            opened + 30_000,
                        )
                        .await?;
                }
            }
        }
    }
    Ok(())
}

const WELCOME_MJML: &str = r##"<mjml>
  <mj-head><mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-text font-size="22px">Hi {{ contact.traits.first_name | default: "there" }},</mj-text>
        <mj-text>Thanks for joining{% if contact.traits.city %} from {{ contact.traits.city }}{% endif %}. Here is 10% off your first order: <strong>WELCOME10</strong></mj-text>
        <mj-button href="https://shop.example/new?utm_source=nudge&amp;utm_campaign=welcome">See what is new</mj-button>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"##;

/// The demo's keys live beside its data so every start prints the same ones.
/// The demo's owner account: created on first start with a random password, which
/// is kept in `demo-owner.json` in the data directory (mode 0600) so every start can
/// print it.
async fn demo_owner(dir: &Path, store: &dyn nudge_store::Store) -> anyhow::Result<(String, String)> {
    const EMAIL: &str = "owner@shop.example";
    let path = dir.join("demo-owner.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let v: Value = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        if let (Some(e), Some(p)) = (v["email"].as_str(), v["password"].as_str())
            && store.user_credentials(e).await?.is_some()
        {
            return Ok((e.to_owned(), p.to_owned()));
        }
    }
    let password = nudge_app::accounts::generate_password();
    let now = jiff::Timestamp::now().as_millisecond();
    match store.user_credentials(EMAIL).await? {
        Some((user, _)) => nudge_app::accounts::reset_password(store, user.id, &password, now).await,
        None => nudge_app::accounts::create_user(store, EMAIL, nudge_core::access::Role::Owner, &password, now)
            .await
            .map(|_| ()),
    }
    .map_err(|e| anyhow::anyhow!("creating the demo owner: {e}"))?;
    write_private(
        &path,
        &serde_json::to_string_pretty(&json!({"email": EMAIL, "password": password}))?,
    )?;
    Ok((EMAIL.to_owned(), password))
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn demo_keys(dir: &Path) -> anyhow::Result<(String, String)> {
    let path = dir.join("demo-keys.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let v: Value = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        if let (Some(a), Some(w)) = (v["admin_key"].as_str(), v["write_key"].as_str()) {
            return Ok((a.to_string(), w.to_string()));
        }
    }
    let admin = nudge_app::keys::generate_secret(nudge_store::KeyKind::Admin);
    let write = nudge_app::keys::generate_secret(nudge_store::KeyKind::Write);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({"admin_key": admin, "write_key": write}))?,
    )?;
    Ok((admin, write))
}

const FIRST: &[&str] = &[
    "Ada", "Omar", "Noa", "Layla", "Yusuf", "Maya", "Dariush", "Sara", "Eitan", "Mina", "Leo", "Zainab", "Tomas",
    "Shirin", "Amir", "Hana", "Lior", "Nadia", "Karim", "Talia",
];
const LAST: &[&str] = &[
    "Levi", "Haddad", "Rahimi", "Cohen", "Nasser", "Karimi", "Mizrahi", "Saleh", "Tehrani", "Peretz", "Aziz",
    "Farahani", "Katz", "Mansour", "Shapiro",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("IL", "Tel Aviv", "Asia/Jerusalem"),
    ("IR", "Tehran", "Asia/Tehran"),
    ("AE", "Dubai", "Asia/Dubai"),
    ("EG", "Cairo", "Africa/Cairo"),
    ("DE", "Berlin", "Europe/Berlin"),
    ("FR", "Paris", "Europe/Paris"),
    ("US", "New York", "America/New_York"),
    ("GB", "London", "Europe/London"),
];
const PRODUCTS: &[(&str, &str, &str, f64)] = &[
    ("SKU-101", "Linen Shirt", "apparel", 49.0),
    ("SKU-102", "Denim Jacket", "apparel", 89.0),
    ("SKU-201", "Espresso Cups (set of 4)", "home", 24.5),
    ("SKU-202", "Olive Wood Board", "home", 39.0),
    ("SKU-301", "Trail Running Shoes", "sport", 119.0),
    ("SKU-302", "Yoga Mat", "sport", 29.0),
    ("SKU-401", "Noise-cancelling Headphones", "electronics", 199.0),
    ("SKU-402", "Phone Charger", "electronics", 19.9),
    ("SKU-501", "Saffron (5 g)", "grocery", 14.0),
    ("SKU-502", "Date Syrup", "grocery", 8.5),
];
const PAGES: &[(&str, &str)] = &[
    ("Home", "/"),
    ("Sale", "/sale"),
    ("New In", "/new"),
    ("Blog", "/blog"),
    ("Pricing", "/membership"),
];

struct Gen {
    rng: StdRng,
    out: Vec<Call>,
    now: Millis,
    seq: u64,
}

impl Gen {
    fn msg(&mut self, kind: CallKind, user: Option<&str>, anon: Option<&str>, at: Millis) -> Call {
        self.seq += 1;
        let mut m = Call::generated(kind, format!("demo-{}", self.seq), user.map(str::to_string), at);
        m.anonymous_id = anon.map(str::to_string);
        m.received_at = at.min(self.now);
        m
    }

    fn track(&mut self, user: &str, event: &str, props: Value, at: Millis, ctx: &Map<String, Value>) {
        let mut m = self.msg(CallKind::Track, Some(user), None, at);
        m.event = Some(event.into());
        m.properties = props.as_object().cloned().unwrap_or_default();
        m.context = ctx.clone();
        self.out.push(m);
    }
}

/// A deterministic demo shop of `n` contacts and their history up to `now`.
pub fn shop(n: usize, now: Millis, seed: u64) -> Vec<Call> {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        out: Vec::new(),
        now,
        seq: 0,
    };
    for i in 0..n {
        let user = format!("cust-{:05}", i + 1);
        let anon = format!("anon-{:05}", i + 1);
        let first = FIRST[g.rng.random_range(0..FIRST.len())];
        let last = LAST[g.rng.random_range(0..LAST.len())];
        let (country, city, tz) = PLACES[g.rng.random_range(0..PLACES.len())];
        let ctx: Map<String, Value> =
            json!({"timezone": tz, "locale": "en-US", "ip": format!("198.51.100.{}", i % 250)})
                .as_object()
                .cloned()
                .unwrap_or_default();
        // First visit: anonymous browsing, sometimes from a campaign.
        let mut t = now - g.rng.random_range(5..180) * DAY - g.rng.random_range(0..DAY);
        let mut page_ctx = ctx.clone();
        if g.rng.random_bool(0.4) {
            page_ctx.insert(
                "campaign".into(),
                json!({"source": (["newsletter", "instagram", "google"][i % 3]), "medium": "cpc", "name": "autumn-sale"}),
            );
        }
        for _ in 0..g.rng.random_range(1..5) {
            let (name, path) = PAGES[g.rng.random_range(0..PAGES.len())];
            let mut m = g.msg(CallKind::Page, None, Some(&anon), t);
            m.name = Some(name.into());
            m.properties = json!({"path": path, "url": format!("https://shop.example{path}"), "title": name})
                .as_object()
                .cloned()
                .unwrap_or_default();
            m.context = page_ctx.clone();
            g.out.push(m);
            t += g.rng.random_range(10_000..300_000);
        }
        // Sign-up: identify joins the anonymous history.
        let mut m = g.msg(CallKind::Identify, Some(&user), Some(&anon), t);
        let birthday = format!(
            "{}-{:02}-{:02}",
            g.rng.random_range(1960..2005),
            g.rng.random_range(1..13),
            g.rng.random_range(1..29)
        );
        m.traits = json!({
            "email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i + 1),
            "first_name": first, "last_name": last, "country": country, "city": city, "timezone": tz,
            "birthday": birthday, "gender": (["female", "male", "unspecified"][g.rng.random_range(0..3)]),
            "plan": if g.rng.random_bool(0.2) { "member" } else { "guest" },
            "test_contact": i < 3,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        m.context = ctx.clone();
        g.out.push(m);
        g.track(&user, "Signed Up", json!({"method": "email"}), t + 1000, &ctx);
        // Shopping sessions.
        let sessions = g.rng.random_range(0..6);
        for s in 0..sessions {
            t += g.rng.random_range(1..20) * DAY + g.rng.random_range(0..DAY);
            if t >= now {
                break;
            }
            let cart_id = format!("cart-{}-{s}", i + 1);
            let mut cart = Vec::new();
            for _ in 0..g.rng.random_range(1..4) {
                let (sku, name, cat, price) = PRODUCTS[g.rng.random_range(0..PRODUCTS.len())];
                g.track(
                    &user,
                    "Product Viewed",
                    json!({"product_id": sku, "name": name, "category": cat, "price": price}),
                    t,
                    &ctx,
                );
                t += g.rng.random_range(20_000..200_000);
                if g.rng.random_bool(0.6) {
                    cart.push(json!({"product_id": sku, "name": name, "category": cat, "price": price, "quantity": 1}));
                    g.track(
                        &user,
                        "Product Added",
                        json!({"cart_id": cart_id, "product_id": sku, "name": name, "price": price, "quantity": 1}),
                        t,
                        &ctx,
                    );
                    t += g.rng.random_range(5_000..60_000);
                }
            }
            if cart.is_empty() {
                continue;
            }
            let total: f64 = cart.iter().map(|p| p["price"].as_f64().unwrap_or(0.0)).sum();
            g.track(
                &user,
                "Cart Updated",
                json!({"cart_id": cart_id, "products": cart.clone(), "value": total}),
                t,
                &ctx,
            );
            if g.rng.random_bool(0.35) {
                continue; // abandoned cart
            }
            t += g.rng.random_range(30_000..600_000);
            g.track(
                &user,
                "Checkout Started",
                json!({"cart_id": cart_id, "value": total, "currency": "USD"}),
                t,
                &ctx,
            );
            let coupon = g.rng.random_bool(0.25).then_some("AUTUMN10");
            let revenue = if coupon.is_some() {
                (total * 0.9 * 100.0).round() / 100.0
            } else {
                total
            };
            t += g.rng.random_range(30_000..300_000);
            g.track(
                &user,
                "Order Completed",
                json!({"order_id": format!("ord-{}-{s}", i + 1), "cart_id": cart_id, "total": revenue, "revenue": revenue,
                       "currency": "USD", "coupon": coupon, "products": cart}),
                t,
                &ctx,
            );
        }
    }
    g.out.retain(|m| m.timestamp <= now);
    g.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shop_is_deterministic_and_believable() {
        let now = 1_800_000_000_000;
        let a = shop(200, now, 7);
        assert_eq!(a, shop(200, now, 7));
        let count = |e: &str| a.iter().filter(|m| m.event.as_deref() == Some(e)).count();
        assert_eq!(a.iter().filter(|m| m.kind == CallKind::Identify).count(), 200);
        assert!(count("Order Completed") > 50, "{}", count("Order Completed"));
        assert!(
            count("Cart Updated") > count("Order Completed"),
            "some carts are abandoned"
        );
        assert!(a.iter().all(|m| m.timestamp <= now));
        let ids: std::collections::HashSet<_> = a.iter().map(|m| &m.message_id).collect();
        assert_eq!(ids.len(), a.len());
    }
}
