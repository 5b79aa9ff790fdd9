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
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

mod common;
use common::{Api, start_server};

const SUBJECT: &str = "mailto:ops@shop.example";

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

async fn send(api: &Api, key: &str) -> i64 {
    let (status, m) = api
        .post(
            "/api/v1/messages",
            json!({"template": "cart", "to": {"user_id": "ada"}, "data": {"coupon": "SPRING"}, "idempotency_key": key}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    m["id"].as_i64().unwrap()
}

/// Waits until the message leaves `queued`.
async fn settled(api: &Api, id: i64) -> Value {
    api.message_when(id, |m| m["state"] != "queued").await
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
    let (_server, base) = start_server(
        dir.path(),
        &[("NUDGE_VAPID_SUBJECT", SUBJECT), ("NUDGE_PUSH_ALLOW_LOCAL", "true")],
    );
    let api = Api::new(&base);

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
    let id = send(&api, "cart-1").await;
    let m = settled(&api, id).await;
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
    let m = settled(&api, send(&api, "cart-2").await).await;
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
    let m = settled(&api, send(&api, "cart-3").await).await;
    assert_eq!(m["state"], "bounced", "{m}");
    assert!(m["error"].as_str().unwrap().contains("410"), "{m}");
    assert_eq!(service.received.lock().unwrap().len(), 2);
    assert_eq!(api.get(&listing).await["data"], json!([]));
    let m = settled(&api, send(&api, "cart-4").await).await;
    assert_eq!(m["state"], "suppressed", "{m}");
    assert_eq!(m["error"], "the contact has no push subscription", "{m}");
    assert_eq!(
        service.received.lock().unwrap().len(),
        2,
        "a gone subscription is not used"
    );
}
