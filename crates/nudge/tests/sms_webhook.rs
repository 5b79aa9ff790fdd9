//! SMS and webhook channels end to end: a real `nudge serve` sends through its SMS
//! channel (Twilio's API shape) and its webhook channel to a local HTTP server in this
//! test that records every request and answers as a provider would — no SMS provider
//! can run here, so this is the one place a stand-in is used. Checked: what was sent
//! (form fields, basic auth, the status callback, the HMAC signature of webhooks),
//! how answers map to message states (sent, bounced and suppressed, retried, failed,
//! delivered), and signed delivery receipts.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

mod common;
use common::{Api, start_server};

const ACCOUNT: &str = "AC0123456789";
const TOKEN: &str = "sms-auth-token";

/// One request the stand-in provider received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// Answers like Twilio for `/2010-04-01/Accounts/...`, and like a webhook receiver for
/// `/hook/<status>`.
async fn provider(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let body = String::from_utf8_lossy(&body).to_string();
    let path = uri.path().to_string();
    let n = {
        let mut log = log.lock().unwrap();
        log.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            headers,
            body: body.clone(),
        });
        log.len()
    };
    if path.ends_with("/Messages.json") {
        let to = form(&body)
            .into_iter()
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v)
            .unwrap_or_default();
        return match to.as_str() {
            "+15550000002" => (
                StatusCode::BAD_REQUEST,
                json!({"code": 21211, "message": "The 'To' number is not a valid phone number."}).to_string(),
            ),
            "+15550000003" => (StatusCode::SERVICE_UNAVAILABLE, "try later".into()),
            _ => (
                StatusCode::CREATED,
                json!({"sid": format!("SM{n:032}"), "status": "queued"}).to_string(),
            ),
        };
    }
    if path.starts_with("/2010-04-01/Accounts/") {
        return (StatusCode::OK, json!({"sid": ACCOUNT, "status": "active"}).to_string());
    }
    match path.as_str() {
        "/hook/ok" => (StatusCode::OK, "thanks".into()),
        "/hook/gone" => (StatusCode::NOT_FOUND, "no such endpoint".into()),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "broken".into()),
    }
}

fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// The environment that points the SMS channel at the stand-in provider.
fn sms_env(provider: &str) -> [(&'static str, &str); 4] {
    [
        ("NUDGE_SMS_URL", provider),
        ("NUDGE_SMS_ACCOUNT", ACCOUNT),
        ("NUDGE_SMS_TOKEN", TOKEN),
        ("NUDGE_SMS_FROM", "+15559999999"),
    ]
}

async fn identify(api: &Api, user: &str, traits: Value) {
    api.track("/v1/identify", json!({"userId": user, "traits": traits}))
        .await;
}

async fn send(api: &Api, template: &str, user: &str, data: Value) -> i64 {
    let (status, m) = api
        .post(
            "/api/v1/messages",
            json!({"template": template, "to": {"user_id": user}, "data": data}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    m["id"].as_i64().unwrap()
}

fn requests_to(log: &Log, suffix: &str) -> Vec<Recorded> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.ends_with(suffix))
        .cloned()
        .collect()
}

/// Starts the stand-in provider; returns its URL and what it records.
async fn start_provider() -> (String, Log) {
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider_url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(provider).with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (provider_url, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_and_webhooks_reach_the_provider_and_receipts_come_back() {
    let (provider_url, log) = start_provider().await;

    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start_server(dir.path(), &sms_env(&provider_url));
    let api = Api::new(&base);

    // The channels say how they are configured, and the SMS one is healthy.
    let channels = api.get("/api/v1/channels").await;
    let channel = |kind: &str| {
        channels["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} channel in {channels}"))
    };
    let sms = channel("sms");
    assert_eq!(
        (sms["transport"].as_str(), sms["healthy"].as_bool()),
        (Some("twilio"), Some(true)),
        "{sms}"
    );
    assert_eq!(sms["settings"]["from"], "+15559999999");
    assert!(!sms.to_string().contains(TOKEN), "the auth token is never shown: {sms}");
    let secret = hex::decode(channel("webhook")["settings"]["signing_secret"].as_str().unwrap()).unwrap();
    assert_eq!(secret.len(), 32);

    for (user, phone) in [
        ("u1", "+1 555 000 0001"),
        ("u2", "+15550000002"),
        ("u3", "+15550000003"),
    ] {
        identify(&api, user, json!({"phone": phone, "first_name": user.to_uppercase()})).await;
    }
    let (status, t) = api
        .post(
            "/api/v1/templates",
            json!({"name": "code", "transactional": true, "content": {
                "channel": "sms", "body": "Hi {{ contact.traits.first_name }}, your code is {{ data.code }}"}}),
        )
        .await;
    assert_eq!(status, 201, "{t}");

    // Accepted by the provider: sent, with the provider's id.
    let ok = send(&api, "code", "u1", json!({"code": "123456"})).await;
    let ok = api.message_when(ok, |m| m["state"] != "queued").await;
    assert_eq!(ok["state"], "sent", "{ok}");
    assert_eq!(ok["recipient"], "+15550000001");
    assert_eq!(ok["rendered"]["body"], "Hi U1, your code is 123456");
    let sid = ok["provider_id"]
        .as_str()
        .expect("the provider's message sid")
        .to_string();
    let sent = requests_to(&log, "/Messages.json");
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/2010-04-01/Accounts/AC0123456789/Messages.json")
    );
    let auth = req.headers["authorization"].to_str().unwrap();
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    assert_eq!(auth, format!("Basic {expected}"));
    let fields = form(&req.body);
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("To"), Some("+15550000001"));
    assert_eq!(field("From"), Some("+15559999999"));
    assert_eq!(field("Body"), Some("Hi U1, your code is 123456"));
    let callback = format!("{base}/hooks/sms/receipts");
    assert_eq!(field("StatusCallback"), Some(callback.as_str()));
    assert!(req.headers.contains_key("idempotency-key"));

    // An invalid number (Twilio error 21211): bounced, and the number is suppressed.
    let bad = send(&api, "code", "u2", json!({"code": "1"})).await;
    let bad = api.message_when(bad, |m| m["state"] != "queued").await;
    assert_eq!(bad["state"], "bounced", "{bad}");
    let sup = api.get("/api/v1/suppressions?channel=sms").await;
    assert_eq!(sup["data"][0]["address"], "+15550000002", "{sup}");
    // A 503: kept for a retry with the error.
    let later = send(&api, "code", "u3", json!({"code": "2"})).await;
    let later = api.message_when(later, |m| m["attempts"] == 1).await;
    assert_eq!(later["state"], "queued", "{later}");
    assert!(later["error"].as_str().unwrap().contains("503"), "{later}");

    // Delivery receipts: signed by the provider with the auth token.
    let post_receipt = |params: Vec<(&str, &str)>, token: &str| {
        let params: Vec<(String, String)> = params.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let signature = nudge_messages::channel::sms::twilio_signature(token, &callback, &params);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        api.http
            .post(&callback)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body)
    };
    let forged = post_receipt(
        vec![("MessageSid", &sid), ("MessageStatus", "delivered")],
        "not-the-token",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let unsigned = api
        .http
        .post(&callback)
        .body(format!("MessageSid={sid}&MessageStatus=delivered"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(
        api.get(&format!("/api/v1/messages/{}", ok["id"])).await["state"],
        "sent"
    );
    // An intermediate status changes nothing; "delivered" does.
    let r = post_receipt(
        vec![("MessageSid", &sid), ("MessageStatus", "sent"), ("AccountSid", ACCOUNT)],
        TOKEN,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r: Value = post_receipt(
        vec![
            ("MessageSid", &sid),
            ("MessageStatus", "delivered"),
            ("AccountSid", ACCOUNT),
        ],
        TOKEN,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        (r["recorded"].as_bool(), r["state"].as_str()),
        (Some(true), Some("delivered")),
        "{r}"
    );
    let delivered = api.get(&format!("/api/v1/messages/{}", ok["id"])).await;
    assert_eq!(delivered["state"], "delivered");
    let contact = api.get("/api/v1/contacts/lookup?user_id=u1").await;
    let events = api
        .get(&format!("/api/v1/contacts/{}/events?limit=50", contact["id"]))
        .await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "Message Delivered"),
        "{events}"
    );

    // Webhooks: the body is rendered and signed; a 2xx means delivered.
    let hook = |name: &str, path: &str| {
        json!({"name": name, "transactional": true, "content": {
            "channel": "webhook", "method": "POST", "url": format!("{provider_url}{path}"),
            "headers": {"Content-Type": "application/json", "X-Shop": "demo"},
            "body": "{\"user\": \"{{ contact.user_id }}\", \"code\": \"{{ data.code }}\"}"}})
    };
    for (name, path) in [
        ("hook-ok", "/hook/ok"),
        ("hook-gone", "/hook/gone"),
        ("hook-broken", "/hook/broken"),
    ] {
        let (status, t) = api.post("/api/v1/templates", hook(name, path)).await;
        assert_eq!(status, 201, "{t}");
    }
    let w = send(&api, "hook-ok", "u1", json!({"code": "42"})).await;
    let w = api.message_when(w, |m| m["state"] != "queued").await;
    assert_eq!(w["state"], "delivered", "{w}");
    let got = requests_to(&log, "/hook/ok");
    assert_eq!(got.len(), 1);
    let req = &got[0];
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body, json!({"user": "u1", "code": "42"}));
    assert_eq!(req.headers["x-shop"], "demo");
    assert_eq!(req.headers["x-nudge-message-id"].to_str().unwrap(), w["id"].to_string());
    let signature = req.headers["x-nudge-signature"].to_str().unwrap();
    let t: i64 = signature
        .strip_prefix("t=")
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("signature {signature}"));
    assert_eq!(
        signature,
        nudge_messages::channel::webhook::signature(&secret, t, &req.body)
    );

    let gone = send(&api, "hook-gone", "u1", json!({})).await;
    let gone = api.message_when(gone, |m| m["state"] != "queued").await;
    assert_eq!(gone["state"], "failed", "a 404 is not retried: {gone}");
    let broken = send(&api, "hook-broken", "u1", json!({})).await;
    let broken = api.message_when(broken, |m| m["attempts"] == 1).await;
    assert_eq!(broken["state"], "queued", "a 500 is retried: {broken}");
}

/// The SMS channel switched from capture to a provider through the admin API: checked
/// before use, applied at once, kept across a restart, and forgotten on DELETE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_configured_through_the_admin_api() {
    let (provider_url, log) = start_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start_server(dir.path(), &[]);
    let api = Api::new(&base);
    let sms_channel = |channels: &Value| {
        channels["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "sms")
            .cloned()
            .unwrap()
    };
    let sms = sms_channel(&api.get("/api/v1/channels").await);
    assert_eq!(
        (sms["transport"].as_str(), sms["source"].as_str()),
        (Some("capture"), Some("settings"))
    );

    // Wrong configurations are refused, naming the field, and change nothing.
    for (kind, body, field) in [
        (
            "sms",
            json!({"transport": "smtp", "url": "smtp://127.0.0.1:25", "from": "a@b.c"}),
            "transport",
        ),
        (
            "sms",
            json!({"transport": "twilio", "base_url": "ftp://x", "account": "AC1", "from": "+1"}),
            "base_url",
        ),
        (
            "sms",
            json!({"transport": "twilio", "base_url": "https://x", "account": "AC1"}),
            "from",
        ),
        ("sms", json!({"transport": "pigeon"}), "transport"),
        ("sms", json!({"transport": "capture", "colour": "red"}), "colour"),
        (
            "email",
            json!({"transport": "smtp", "url": "smtp://127.0.0.1:25", "from": "nobody"}),
            "from",
        ),
        ("push", json!({"transport": "capture"}), "kind"),
    ] {
        let (status, e) = api
            .admin(
                reqwest::Method::PUT,
                &format!("/api/v1/channels/{kind}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, e["error"]["field"].as_str()),
            (400, Some(field)),
            "{body} -> {e}"
        );
    }
    assert_eq!(sms_channel(&api.get("/api/v1/channels").await)["transport"], "capture");

    let config = json!({"transport": "twilio", "base_url": provider_url, "account": ACCOUNT, "token": TOKEN, "from": "+15559999999"});
    let (status, sms) = api
        .admin(reqwest::Method::PUT, "/api/v1/channels/sms", Some(config))
        .await;
    assert_eq!(status, 200, "{sms}");
    assert_eq!(
        (
            sms["transport"].as_str(),
            sms["source"].as_str(),
            sms["healthy"].as_bool()
        ),
        (Some("twilio"), Some("api"), Some(true)),
        "{sms}"
    );
    assert!(!sms.to_string().contains(TOKEN), "{sms}");

    identify(&api, "u1", json!({"phone": "+15550000001"})).await;
    let (status, _) = api
        .post(
            "/api/v1/templates",
            json!({"name": "hello", "transactional": true, "content": {"channel": "sms", "body": "Hello"}}),
        )
        .await;
    assert_eq!(status, 201);
    let id = send(&api, "hello", "u1", json!({})).await;
    assert_eq!(api.message_when(id, |m| m["state"] != "queued").await["state"], "sent");
    assert_eq!(requests_to(&log, "/Messages.json").len(), 1);

    // Kept across a restart.
    drop(server);
    let (_server, base) = start_server(dir.path(), &[]);
    let api = Api::new(&base);
    let sms = sms_channel(&api.get("/api/v1/channels").await);
    assert_eq!(
        (sms["transport"].as_str(), sms["source"].as_str()),
        (Some("twilio"), Some("api")),
        "{sms}"
    );

    // DELETE goes back to the start-up settings: capture.
    let (status, sms) = api.admin(reqwest::Method::DELETE, "/api/v1/channels/sms", None).await;
    assert_eq!((status, sms["transport"].as_str()), (200, Some("capture")), "{sms}");
    let id = send(&api, "hello", "u1", json!({})).await;
    let m = api.message_when(id, |m| m["state"] != "queued").await;
    assert_eq!(
        (m["state"].as_str(), m["rendered"]["body"].as_str()),
        (Some("sent"), Some("Hello"))
    );
    assert_eq!(requests_to(&log, "/Messages.json").len(), 1, "captured, not sent");

    // An SMTP server that does not answer is stored but reported unhealthy.
    let (status, email) = api
        .admin(
            reqwest::Method::PUT,
            "/api/v1/channels/email",
            Some(json!({"transport": "smtp", "url": "smtp://127.0.0.1:9", "from": "Shop <shop@example.com>"})),
        )
        .await;
    assert_eq!((status, email["healthy"].as_bool()), (200, Some(false)), "{email}");
    assert!(email["error"].as_str().unwrap().contains("SMTP"), "{email}");
}
