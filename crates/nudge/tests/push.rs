//! Web Push end to end, against a real `nudge serve`. No real push service can run
//! here, so an HTTP server inside the test plays one: it records what arrives and
//! answers what the test tells it to. The test plays the browser too: it makes a key
//! pair and an auth secret, subscribes through the write-key API, and at the end
//! decrypts what the push service received with the browser's private key (RFC 8291)
//! and checks the VAPID signature against the key the server publishes (RFC 8292).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use nudge_messages::channel::push::{B64, VapidKey, decrypt, verify_vapid};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITE_KEY: &str = "nw_push_test_write_key";
const ADMIN_KEY: &str = "na_push_test_admin_key";
const SUBJECT: &str = "mailto:ops@shop.example";

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path) -> (Proc, String) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .current_dir(dir)
        .env_remove("NUDGE_CONFIG")
        .env_remove("NUDGE_DATABASE_URL")
        .env_remove("NUDGE_SMTP_URL")
        .env("NUDGE_ADMIN_KEY", ADMIN_KEY)
        .env("NUDGE_WRITE_KEY", WRITE_KEY)
        .env("NUDGE_VAPID_SUBJECT", SUBJECT)
        .env("NUDGE_PUSH_ALLOW_LOCAL", "true")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start nudge serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "nudge serve exited; log: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        if let Some(rest) = line.strip_prefix("nudge listening on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});
    (Proc(child), format!("http://{addr}"))
}

/// One request as the push service received it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The fake push service: records requests, answers `status`.
#[derive(Clone)]
struct PushService {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

async fn push_endpoint(
    State(s): State<PushService>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let n = {
        let mut r = s.received.lock().unwrap();
        r.push(Received {
            path: uri.path().to_string(),
            headers,
            body: body.to_vec(),
        });
        r.len()
    };
    let mut out = HeaderMap::new();
    out.insert("location", format!("https://push.test/m/{n}").parse().unwrap());
    (StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap(), out)
}

async fn start_push_service() -> (PushService, String) {
    let service = PushService {
        received: Arc::default(),
        status: Arc::new(AtomicU16::new(201)),
    };
    let app = axum::Router::new()
        .route("/push/{id}", axum::routing::post(push_endpoint))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (service, origin)
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }
    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.admin(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
    /// A write-key call (tracking API, push subscriptions).
    async fn write(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
    async fn send(&self, key: &str) -> i64 {
        let (status, m) = self
            .post(
                "/api/v1/messages",
                json!({"template": "cart", "to": {"user_id": "ada"}, "data": {"coupon": "SPRING"}, "idempotency_key": key}),
            )
            .await;
        assert_eq!(status, 202, "{m}");
        m["id"].as_i64().unwrap()
    }
    /// Waits until the message leaves `queued`.
    async fn settled(&self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.get(&format!("/api/v1/messages/{id}")).await;
            if m["state"] != "queued" {
                return m;
            }
            assert!(Instant::now() < deadline, "message {id} stayed {m}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", r.headers))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_encrypted_signed_and_gone_subscriptions_bounce() {
    let dir = tempfile::tempdir().unwrap();
    let (service, origin) = start_push_service().await;
    let (_server, base) = start_server(dir.path());
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
    };

    // The browser: asks for the server's key, makes its own P-256 key pair (a VAPID
    // key is just a P-256 key pair) and auth secret.
    let resp = api
        .http
        .get(format!("{base}/v1/push/vapid-public-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "public, no key needed");
    let server_key = resp.json::<Value>().await.unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(B64.decode(&server_key).unwrap().len(), 65);
    let browser = VapidKey::generate();
    let auth: [u8; 16] = rand::random();
    let endpoint = format!("{origin}/push/ada-laptop");
    let subscription = |endpoint: &str, p256dh: &str, auth: &str| json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": p256dh, "auth": auth}});

    // Bad subscriptions are refused, naming the field, and change nothing.
    let short_key = B64.encode(&B64.decode(browser.public_key()).unwrap()[..33]);
    for (sub, field) in [
        (
            subscription(&endpoint, &short_key, &B64.encode(auth)),
            "subscription.keys.p256dh",
        ),
        (
            subscription(&endpoint, &browser.public_key(), &B64.encode(&auth[..8])),
            "subscription.keys.auth",
        ),
        (
            subscription(
                "http://push.example.com/push/ada-laptop",
                &browser.public_key(),
                &B64.encode(auth),
            ),
            "subscription.endpoint",
        ),
    ] {
        let (status, v) = api
            .write("/v1/push/subscriptions", json!({"userId": "ada", "subscription": sub}))
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "invalid_field", "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (status, _) = api
        .admin(reqwest::Method::GET, "/api/v1/contacts/lookup?user_id=ada", None)
        .await;
    assert_eq!(status, 404, "a refused subscription creates no contact");

    // Ada is known from tracking, then subscribes.
    let (status, v) = api
        .write("/v1/identify", json!({"userId": "ada", "traits": {"name": "Ada"}}))
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api
        .write(
            "/v1/push/subscriptions",
            json!({"userId": "ada", "subscription": subscription(&endpoint, &browser.public_key(), &B64.encode(auth))}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let ada = api.get("/api/v1/contacts/lookup?user_id=ada").await;
    assert_eq!(v["subscription"]["contact_id"], ada["id"]);
    let listing = format!("/api/v1/contacts/{}/push-subscriptions", ada["id"]);
    assert_eq!(api.get(&listing).await["data"].as_array().unwrap().len(), 1);

    let (status, t) = api
        .post(
            "/api/v1/templates",
            json!({"name": "cart", "content": {
                "channel": "push",
                "title": "Hi {{ contact.traits.name }}",
                "body": "Your cart misses you, {{ contact.traits.name }}.",
                "url": "https://shop.example/cart?coupon={{ data.coupon }}",
            }}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let channels = api.get("/api/v1/channels").await;
    assert!(
        channels["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "push" && c["transport"] == "webpush"),
        "{channels}"
    );

    // Sent: what the push service received is signed and decrypts for the browser.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let id = api.send("cart-1").await;
    let m = api.settled(id).await;
    assert_eq!(m["state"], "sent", "{m}");
    assert_eq!(m["recipient"], endpoint.as_str(), "{m}");
    assert_eq!(m["rendered"]["subscriptions"][0]["outcome"], "sent", "{m}");
    let got = service.received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/push/ada-laptop");
    assert_eq!(header(r, "content-encoding"), "aes128gcm");
    assert_eq!(header(r, "ttl"), "86400");
    assert_eq!(header(r, "urgency"), "normal");
    let claims = verify_vapid(header(r, "authorization"), &server_key).expect("the VAPID JWT verifies");
    assert_eq!(claims["aud"], origin.as_str(), "aud is the push service's origin");
    assert_eq!(claims["sub"], SUBJECT);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > before && exp <= before + 24 * 3600 + 60, "exp {exp}");
    let plaintext = decrypt(&r.body, &B64.decode(browser.private_key()).unwrap(), &auth).expect("decrypts");
    let payload: Value = serde_json::from_slice(&plaintext).unwrap();
    assert_eq!(
        payload,
        json!({
            "title": "Hi Ada",
            "body": "Your cart misses you, Ada.",
            "url": "https://shop.example/cart?coupon=SPRING",
            "message_id": id,
        })
    );
    assert!(api.get(&listing).await["data"][0]["last_used_at"].is_string());

    // Consent: a contact unsubscribed from push gets no marketing push.
    let (status, v) = api
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{}", ada["id"]),
            Some(json!({"subscriptions": {"push": "unsubscribed"}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let m = api.settled(api.send("cart-2").await).await;
    assert_eq!(m["state"], "suppressed", "{m}");
    assert!(m["error"].as_str().unwrap().contains("unsubscribed from push"), "{m}");
    assert_eq!(service.received.lock().unwrap().len(), 1, "nothing was pushed");
    let (status, v) = api
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{}", ada["id"]),
            Some(json!({"subscriptions": {"push": "subscribed"}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The browser dropped the subscription: the push service answers 410, the
    // message bounces and the subscription is never used again.
    service.status.store(410, Ordering::SeqCst);
    let m = api.settled(api.send("cart-3").await).await;
    assert_eq!(m["state"], "bounced", "{m}");
    assert!(m["error"].as_str().unwrap().contains("410"), "{m}");
    assert_eq!(service.received.lock().unwrap().len(), 2);
    assert_eq!(api.get(&listing).await["data"], json!([]));
    let m = api.settled(api.send("cart-4").await).await;
    assert_eq!(m["state"], "suppressed", "{m}");
    assert_eq!(m["error"], "the contact has no push subscription", "{m}");
    assert_eq!(
        service.received.lock().unwrap().len(),
        2,
        "a gone subscription is not used"
    );
}
