//! Forms over HTTP, on a fresh SQLite database: the admin API (`/api/v1/forms`:
//! problems named by path, create, list, report, submissions as JSON and CSV), the
//! hosted page (`/f/{slug}`, localised and right-to-left), plain HTML posts and JSON
//! posts from the embed script with CORS by the form's origins, the spam rules
//! (honeypot, minimum fill time, forged stamp) storing nothing, and the per-address
//! rate limit letting other addresses through.

use nudge_api::{AppState, router_with_ui};
use nudge_app::forms::FormLimits;
use nudge_app::keys;
use nudge_core::{Clock, ManualClock, Millis};
use nudge_engine::SegmentEngine;
use nudge_store::{Ingestor, IngestorConfig, Lookup, Store};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

const ADMIN: &str = "na_web_forms_admin";
const WRITE: &str = "nw_web_forms_write";
/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;

struct Server {
    url: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn spawn(limits: FormLimits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    // A workspace of its own: a key of its own.
    let ring = nudge_store::secrets::Keyring::new(nudge_store::secrets::MasterKey::generate());
    let store = nudge_store::open(None, dir.path(), ring).await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    keys::ensure_bootstrap_keys(&*store, Some(ADMIN), Some(WRITE), T0)
        .await
        .unwrap();
    let ingestor = Arc::new(Ingestor::start(
        store.clone(),
        dyn_clock.clone(),
        IngestorConfig::default(),
    ));
    let segments = SegmentEngine::new(store.clone(), dyn_clock.clone(), Default::default());
    // Behind a proxy in these tests: `X-Forwarded-For` names the client.
    let state = AppState::new(store.clone(), ingestor, dyn_clock, segments).with_forms(limits, true);
    let web = nudge_web::WebState::new(state.clone(), false);
    let app = router_with_ui(state, nudge_web::router(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    Server {
        url: format!("http://{addr}"),
        http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
        store,
        clock,
        _dir: dir,
    }
}

impl Server {
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn page(&self, slug: &str) -> (StatusCode, String) {
        let r = self.http.get(format!("{}/f/{slug}", self.url)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// A fresh render stamp, as the page carries it.
    async fn stamp(&self, slug: &str) -> String {
        let (_, html) = self.page(slug).await;
        let at = html.find("name=\"_nudge_t\" value=\"").unwrap() + "name=\"_nudge_t\" value=\"".len();
        html[at..at + html[at..].find('"').unwrap()].to_string()
    }

    async fn post_form(&self, slug: &str, fields: &[(&str, &str)], ip: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/f/{slug}", self.url))
            .header("x-forwarded-for", ip)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, slug: &str, body: Value, origin: &str, ip: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/f/{slug}", self.url))
            .header("origin", origin)
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn contacts(&self) -> u64 {
        self.store.contact_count().await.unwrap()
    }
}

fn definition() -> Value {
    json!({
        "fields": [
            {"name": "email", "type": "email", "label": "Email", "required": true},
            {"name": "first_name", "type": "text", "label": "First name"},
            {"name": "company_size", "type": "select", "label": "Company size", "options": ["1-10", "11-100"]},
            {"name": "utm_source", "type": "hidden", "query": "utm_source"}
        ],
        "consents": [{"subscription": "email:newsletter", "label": "Send me the newsletter"}],
        "after_submit": {"message": "Thanks for signing up!"},
        "allowed_origins": ["https://shop.example"],
        "page": {"title": "Join the newsletter", "text": "We write **once a month**.\n\n<script>x</script>"},
        "spam": {"min_fill_ms": 3000}
    })
}

#[tokio::test]
async fn forms_are_created_by_the_api_with_every_problem_named() {
    let s = spawn(FormLimits::default()).await;
    let (status, body) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/forms",
            Some(json!({"name": "", "slug": "Bad Slug", "definition": {
                "fields": [{"name": "email", "type": "email", "label": "Email"}],
                "after_submit": {"redirect": "javascript:alert(1)"},
                "allowed_origins": ["shop.example"]
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "slug",
            "definition.fields[0].required",
            "definition.after_submit.redirect",
            "definition.allowed_origins[0]"
        ]
    );
    let (status, body) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/forms",
            Some(json!({"name": "N", "slug": "n", "definition": {"fields": [{"name": "email", "type": "colour"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], json!("definition.fields[0].type"));
    // A double opt-in needs a template that exists.
    let mut d = definition();
    d["double_opt_in"] = json!({"confirm_template": "confirm"});
    let (status, body) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/forms",
            Some(json!({"name": "N", "slug": "n", "definition": d})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["field"],
        json!("definition.double_opt_in.confirm_template")
    );

    let (status, created) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/forms",
            Some(json!({"name": "Newsletter", "slug": "newsletter", "definition": definition()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["url"], json!("/f/newsletter"));
    let id = created["id"].as_i64().unwrap();
    let (status, body) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/forms",
            Some(json!({"name": "Other", "slug": "newsletter", "definition": definition()})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (_, list) = s.api(reqwest::Method::GET, "/api/v1/forms", None).await;
    assert_eq!(list["data"][0]["id"], json!(id));
    let mut d = definition();
    d["page"]["locale"] = json!("fa");
    let (status, updated) = s
        .api(
            reqwest::Method::PUT,
            &format!("/api/v1/forms/{id}"),
            Some(json!({"name": "Newsletter", "slug": "newsletter", "definition": d})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (status, _) = s.api(reqwest::Method::GET, "/api/v1/forms/x", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s.api(reqwest::Method::GET, "/api/v1/forms/999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .api(reqwest::Method::DELETE, &format!("/api/v1/forms/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.page("newsletter").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The API takes admin keys only.
    let r = s.http.get(format!("{}/api/v1/forms", s.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_hosted_page_takes_a_plain_post_and_spam_stores_nothing() {
    let s = spawn(FormLimits::default()).await;
    let (status, created) = s
        .api(
            reqwest::Method::POST,
            "/api/v1/forms",
            Some(json!({"name": "Newsletter", "slug": "newsletter", "definition": definition()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let (status, html) = s.page("newsletter").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(html.contains("<title>Join the newsletter</title>"));
    assert!(html.contains("<strong>once a month</strong>"));
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;") && !html.contains("<script>x"));
    assert!(html.contains("name=\"viewport\""));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external resources"
    );

    // Too fast: the stamp says the page was shown just now.
    let stamp = s.stamp("newsletter").await;
    let good = |stamp: &str| {
        vec![
            ("_nudge_t".to_string(), stamp.to_string()),
            ("email".into(), "Ada@Example.com".into()),
            ("first_name".into(), "Ada".into()),
            ("company_size".into(), "11-100".into()),
            ("utm_source".into(), "newsletter-ad".into()),
            ("consent:email:newsletter".into(), "on".into()),
            ("_nudge_anonymous_id".into(), "anon-page-1".into()),
        ]
    };
    let fields = good(&stamp);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = s.post_form("newsletter", &pairs, "10.0.0.1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(body.contains("too quickly"), "{body}");
    assert_eq!(s.contacts().await, 0, "a too-fast submission stores nothing");

    // The honeypot, filled.
    s.clock.advance(5_000);
    let mut with_hp = pairs.clone();
    with_hp.push(("_nudge_hp", "http://spam.example"));
    let r = s.post_form("newsletter", &with_hp, "10.0.0.1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("automated"));
    // A forged stamp.
    let mut forged = pairs.clone();
    forged[0].1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let r = s.post_form("newsletter", &forged, "10.0.0.1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("expired"));
    // A bad value: the page again with the field's problem and what was typed.
    let mut bad = pairs.clone();
    bad[1].1 = "not-an-email";
    let r = s.post_form("newsletter", &bad, "10.0.0.1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("is not an email address") && html.contains("value=\"Ada\""),
        "{html}"
    );
    assert_eq!(s.contacts().await, 0, "refused submissions store nothing");
    let (_, report) = s
        .api(reqwest::Method::GET, &format!("/api/v1/forms/{id}/report"), None)
        .await;
    assert_eq!(report["submissions"], json!(0));

    // In time, with everything right: the thank-you page.
    let r = s.post_form("newsletter", &pairs, "10.0.0.1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Thanks for signing up!"));
    let c = s
        .store
        .find_contact(&Lookup::Email("ada@example.com".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.traits["first_name"], json!("Ada"));
    assert_eq!(c.traits["company_size"], json!("11-100"));
    assert_eq!(c.traits["utm_source"], json!("newsletter-ad"));
    assert_eq!(
        c.subscriptions["email:newsletter"],
        nudge_core::Subscription::Subscribed
    );
    assert_eq!(
        s.store
            .find_contact(&Lookup::AnonymousId("anon-page-1".into()))
            .await
            .unwrap()
            .map(|x| x.id),
        Some(c.id)
    );

    let (_, report) = s
        .api(reqwest::Method::GET, &format!("/api/v1/forms/{id}/report"), None)
        .await;
    assert_eq!(report["submissions"], json!(1));
    assert!(report["views"].as_u64().unwrap() >= 2);
    assert!(report["conversion_rate"].as_f64().unwrap() > 0.0);
    let (_, subs) = s
        .api(reqwest::Method::GET, &format!("/api/v1/forms/{id}/submissions"), None)
        .await;
    assert_eq!(subs["data"][0]["email"], json!("ada@example.com"));
    assert_eq!(subs["data"][0]["source"], json!("page"));
    let (status, _) = s
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/forms/{id}/submissions?limit=0"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let r = s
        .http
        .get(format!("{}/api/v1/forms/{id}/submissions.csv", s.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "submission_id,submitted_at,contact_id,email,source,consents,email,first_name,company_size,utm_source"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .contains(",ada@example.com,page,email:newsletter,")
    );
}

#[tokio::test]
async fn the_embed_posts_json_with_cors_by_the_forms_origins() {
    let s = spawn(FormLimits::default()).await;
    let mut d = definition();
    d["page"]["locale"] = json!("he");
    s.api(
        reqwest::Method::POST,
        "/api/v1/forms",
        Some(json!({"name": "Newsletter", "slug": "newsletter", "definition": d})),
    )
    .await;
    let (_, html) = s.page("newsletter").await;
    assert!(html.contains("<html lang=\"he\" dir=\"rtl\">"));
    let r = s
        .http
        .get(format!("{}/f/newsletter/embed.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = r.text().await.unwrap();
    assert!(js.contains("\"dir\":\"rtl\"") && js.contains("/f/newsletter"));
    let at = js.find("\"stamp\":\"").unwrap() + "\"stamp\":\"".len();
    let stamp = js[at..at + js[at..].find('"').unwrap()].to_string();

    // The preflight: allowed for the form's origin only.
    let pre = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/f/newsletter", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let r = pre("https://shop.example").await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");
    let r = pre("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    s.clock.advance(5_000);
    let body = json!({"_nudge_t": stamp, "email": "grace@example.com", "first_name": "Grace",
                      "consent:email:newsletter": true, "_nudge_anonymous_id": "anon-embed"});
    let r = s
        .post_json("newsletter", body.clone(), "https://evil.example", "10.0.0.2")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], json!("origin_not_allowed"));
    assert_eq!(e["error"]["localized"], json!("לא ניתן לשלוח את הטופס הזה מאתר זה."));
    assert_eq!(s.contacts().await, 0);

    let mut bad = body.clone();
    bad["email"] = json!("nope");
    let r = s.post_json("newsletter", bad, "https://shop.example", "10.0.0.2").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], json!("email"));
    assert_eq!(e["error"]["details"][0]["field"], json!("email"));

    let r = s
        .post_json("newsletter", body, "https://shop.example", "10.0.0.2")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");
    let ok: Value = r.json().await.unwrap();
    assert_eq!(ok["message"], json!("Thanks for signing up!"));
    let c = s
        .store
        .find_contact(&Lookup::Email("grace@example.com".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.subscriptions["email:newsletter"],
        nudge_core::Subscription::Subscribed
    );
    let events = s
        .store
        .contact_events(
            c.id,
            &nudge_store::EventQuery {
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .items;
    let e = events
        .iter()
        .find(|e| e.name.as_deref() == Some("Form Submitted"))
        .unwrap();
    assert_eq!(e.properties["form"], json!("Newsletter"));
    assert_eq!(e.properties["source"], json!("embed"));
}

#[tokio::test]
async fn a_flood_from_one_address_is_limited_while_others_go_through() {
    let s = spawn(FormLimits {
        ip_burst: 3.0,
        ip_per_minute: 1.0,
        form_burst: 1_000.0,
        form_per_minute: 1_000.0,
    })
    .await;
    let mut d = definition();
    d["spam"]["min_fill_ms"] = json!(0);
    s.api(
        reqwest::Method::POST,
        "/api/v1/forms",
        Some(json!({"name": "Newsletter", "slug": "newsletter", "definition": d})),
    )
    .await;
    let stamp = s.stamp("newsletter").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let email = format!("flood{i}@example.com");
        let r = s
            .post_form("newsletter", &[("_nudge_t", &stamp), ("email", &email)], "192.0.2.7")
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.text().await.unwrap().contains("Too many submissions"));
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429, 429]);
    let r = s
        .post_form(
            "newsletter",
            &[("_nudge_t", &stamp), ("email", "other@example.com")],
            "198.51.100.9",
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "another address goes through");
    let r = s
        .post_json(
            "newsletter",
            json!({"_nudge_t": stamp, "email": "json@example.com"}),
            "https://shop.example",
            "192.0.2.7",
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], json!("rate_limited"));
    assert_eq!(s.contacts().await, 4, "only what went through is stored");
}

/// A signed-in browser: its session cookie and CSRF token.
async fn sign_in(s: &Server, email: &str, role: nudge_core::access::Role) -> (String, String) {
    const PASSWORD: &str = "a long enough password";
    nudge_app::accounts::create_user(&*s.store, email, role, PASSWORD, T0)
        .await
        .unwrap();
    let r = s
        .http
        .post(format!("{}/sign-in", s.url))
        .form(&[("email", email), ("password", PASSWORD), ("next", "/forms")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("nudge_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let page = s
        .http
        .get(format!("{}/forms", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("data-csrf=\"").unwrap() + "data-csrf=\"".len();
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn the_ui_edits_forms_shows_the_report_and_the_snippet() {
    let s = spawn(FormLimits::default()).await;
    let (cookie, csrf) = sign_in(&s, "owner@example.com", nudge_core::access::Role::Owner).await;
    let post = |path: &str, fields: Vec<(&str, &str)>| {
        s.http
            .post(format!("{}{path}", s.url))
            .header("cookie", &cookie)
            .header("origin", &s.url)
            .form(&fields)
            .send()
    };
    let get = |path: String| s.http.get(format!("{}{path}", s.url)).header("cookie", &cookie).send();
    let (status, _) = {
        let r = get("/forms/new".into()).await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    // A problem comes back with its path, and the inputs keep what was typed.
    let base = vec![
        ("_csrf", csrf.as_str()),
        ("name", "Webinar"),
        ("slug", "webinar"),
        ("fields[0].name", "email"),
        ("fields[0].type", "email"),
        ("fields[0].label", "Email"),
        ("fields[0].required", "on"),
        ("fields[1].name", "plan"),
        ("fields[1].type", "select"),
        ("fields[1].label", "Plan"),
        ("fields[1].options", ""),
        ("fields[2].name", ""),
        ("fields[2].type", "text"),
        ("consents[0].subscription", "email:webinars"),
        ("consents[0].label", "Tell me about webinars"),
        ("thanks", "See you there"),
        ("origins", "https://shop.example"),
        ("title", "<b>Join</b>"),
        ("text", "Live **demo**"),
        ("locale", "ar"),
        ("min_fill_ms", "1000"),
        ("proof_of_work", "0"),
    ];
    let r = post("/forms/new", base.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("definition.fields[1].options"), "{html}");
    assert!(html.contains("value=\"Webinar\""));
    let mut good = base.clone();
    good[10] = ("fields[1].options", "free, pro");
    let r = post("/forms/new", good).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let f = s.store.form_by_slug("webinar").await.unwrap().unwrap();
    assert_eq!(location, format!("/forms/{}", f.id));
    assert_eq!(
        f.definition.fields[1].options,
        vec!["free".to_string(), "pro".to_string()]
    );
    assert_eq!(f.definition.page.locale, "ar");
    // The landing page is in Arabic, right to left; the title is escaped.
    let (_, page) = s.page("webinar").await;
    assert!(
        page.contains("dir=\"rtl\"") && page.contains("Join") && !page.contains("<b>Join"),
        "{page}"
    );
    assert!(page.contains("إرسال"));
    let list = get("/forms".into()).await.unwrap().text().await.unwrap();
    assert!(list.contains("/f/webinar") && list.contains("Webinar"));
    let report = get(location.clone()).await.unwrap().text().await.unwrap();
    assert!(report.contains("/f/webinar/embed.js"), "the embed snippet");
    assert!(
        report.contains("id=\"form-views\">1<"),
        "the page view counted: {report}"
    );
    let csv = get(format!("{location}/submissions.csv"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("submission_id,submitted_at,contact_id,email,source,consents,email,plan"));
    // The editor shows the saved form.
    let edit = get(format!("{location}/edit")).await.unwrap().text().await.unwrap();
    assert!(edit.contains("value=\"free, pro\"") && edit.contains("value=\"email:webinars\""));

    // An analyst reads but cannot edit.
    let (a_cookie, a_csrf) = sign_in(&s, "analyst@example.com", nudge_core::access::Role::Analyst).await;
    let r = s
        .http
        .get(format!("{}/forms/new", s.url))
        .header("cookie", &a_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .http
        .post(format!("{}{location}/delete", s.url))
        .header("cookie", &a_cookie)
        .header("origin", &s.url)
        .form(&[("_csrf", a_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(&format!("{location}/delete"), vec![("_csrf", csrf.as_str())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(s.store.form_by_slug("webinar").await.unwrap().is_none());
}
