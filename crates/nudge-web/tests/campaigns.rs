//! The Campaigns and Reports pages over HTTP, on a fresh SQLite database: an owner
//! builds a campaign with two variants and an A/B test in the editor (the live
//! audience count, a field error at the share, the application's problems at the
//! variant's template), sends it, the campaign engine takes its snapshot and queues
//! the test share, the owner picks the winner, and the report, its CSV and the
//! workspace report show it; an analyst reads everything and changes nothing; the
//! CSRF guard and HTML escaping hold; conversion settings are checked field by field.

use nudge_api::{AppState, router_with_ui};
use nudge_app::{accounts, keys};
use nudge_core::access::Role;
use nudge_core::{Clock, ManualClock, Millis};
use nudge_engine::{CampaignEngine, SegmentEngine};
use nudge_store::{Ingestor, IngestorConfig, NewSegment, NewTemplate, Store};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

const WRITE: &str = "nw_web_campaigns_write";
const ADMIN: &str = "na_web_campaigns_admin";
/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;
const PASSWORD: &str = "a long enough password";
const SCRIPT: &str = "<script>alert(1)</script>";

struct Ui {
    url: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    campaigns: Arc<CampaignEngine>,
    _dir: tempfile::TempDir,
}

async fn spawn() -> Ui {
    let dir = tempfile::tempdir().unwrap();
    // A workspace of its own: a key of its own.
    let ring = nudge_store::secrets::Keyring::new(nudge_store::secrets::MasterKey::generate());
    let store = nudge_store::open(None, dir.path(), ring).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(T0));
    keys::ensure_bootstrap_keys(&*store, Some(ADMIN), Some(WRITE), T0)
        .await
        .unwrap();
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));
    let segments = SegmentEngine::new(store.clone(), clock.clone(), Default::default());
    let campaigns = CampaignEngine::new(store.clone(), clock.clone(), Default::default());
    let state = AppState::new(store.clone(), ingestor, clock, segments).with_campaigns(campaigns.clone());
    let web = nudge_web::WebState::new(state.clone(), false);
    let app = router_with_ui(state, nudge_web::router(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    Ui {
        url: format!("http://{addr}"),
        http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
        store,
        campaigns,
        _dir: dir,
    }
}

/// A signed-in browser: its session cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Ui {
    async fn sign_in(&self, email: &str, role: Role) -> Session {
        accounts::create_user(&*self.store, email, role, PASSWORD, T0)
            .await
            .unwrap();
        let r = self
            .http
            .post(format!("{}/sign-in", self.url))
            .form(&[("email", email), ("password", PASSWORD), ("next", "/campaigns")])
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
        let mut s = Session {
            cookie,
            csrf: String::new(),
        };
        let (_, page) = self.get(&s, "/campaigns").await;
        let at = page.find("data-csrf=\"").unwrap() + "data-csrf=\"".len();
        s.csrf = page[at..at + page[at..].find('"').unwrap()].to_owned();
        s
    }

    async fn get(&self, s: &Session, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", &s.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// A form post: status, `Location` and body; `csrf: false` leaves the token out.
    async fn post(&self, s: &Session, path: &str, fields: &[(&str, &str)], csrf: bool) -> (StatusCode, String, String) {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        if csrf {
            fields.push(("_csrf", &s.csrf));
        }
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &s.cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (r.status(), location, r.text().await.unwrap())
    }

    /// Runs the campaign engine until it has nothing to do now.
    async fn settle(&self) {
        for _ in 0..20 {
            let r = self.campaigns.run_once().await.unwrap();
            if r.snapshot == 0 && r.queued == 0 && r.moves == 0 && r.skipped == 0 && r.deferred == 0 {
                return;
            }
        }
    }
}

/// Text without Fluent's isolation marks.
fn plain(s: &str) -> String {
    s.replace(['\u{2068}', '\u{2069}'], "")
}

#[tokio::test]
async fn campaign_pages() {
    let ui = spawn().await;
    let owner = ui.sign_in("owner@example.test", Role::Owner).await;
    let analyst = ui.sign_in("analyst@example.test", Role::Analyst).await;

    // Ten contacts with e-mail addresses, six on the pro plan; one of them staff.
    let batch: Vec<_> = (0..10)
        .map(|i| {
            json!({"type": "identify", "userId": format!("u{i}"), "traits": {
                "email": format!("u{i}@example.com"),
                "plan": if i < 6 { "pro" } else { "free" },
                "staff": i == 0,
            }})
        })
        .collect();
    let r = ui
        .http
        .post(format!("{}/v1/batch", ui.url))
        .basic_auth(WRITE, Some(""))
        .json(&json!({"batch": batch}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let segment = |name: &str, def: serde_json::Value| NewSegment {
        name: name.into(),
        description: String::new(),
        definition: nudge_core::segment::parse_condition(&def).unwrap(),
        administrative: false,
    };
    let pro = ui
        .store
        .create_segment(
            segment(
                &format!("Pro {SCRIPT}"),
                json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}),
            ),
            T0,
        )
        .await
        .unwrap();
    let staff = ui
        .store
        .create_segment(
            segment(
                "Staff",
                json!({"type": "trait", "trait": "staff", "op": "equals", "value": true}),
            ),
            T0,
        )
        .await
        .unwrap();
    let template = |name: &str, transactional: bool| NewTemplate {
        name: name.into(),
        description: String::new(),
        channel: "email".into(),
        transactional,
        topic: None,
        content: json!({"channel": "email", "subject": format!("{name} news"), "html": "<p>Hello</p>"}),
    };
    let a = ui.store.create_template(template("Spring A", false), T0).await.unwrap();
    let b = ui.store.create_template(template("Spring B", false), T0).await.unwrap();
    let receipt = ui.store.create_template(template("Receipt", true), T0).await.unwrap();
    let (pro_id, staff_id) = (pro.id.to_string(), staff.id.to_string());
    let (a_id, b_id, receipt_id) = (a.id.to_string(), b.id.to_string(), receipt.id.to_string());

    // The list and a blank editor; names are escaped.
    let (s, page) = ui.get(&owner, "/campaigns").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("id=\"new-campaign\""));
    let (_, page) = ui.get(&analyst, "/campaigns").await;
    assert!(!page.contains("id=\"new-campaign\""), "analysts create nothing");
    let (s, page) = ui.get(&owner, "/campaigns/new").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !page.contains(SCRIPT) && page.contains("Pro &#60;script&#62;"),
        "segment names are escaped"
    );
    assert!(
        page.contains("Spring A") && !page.contains("Receipt (email)"),
        "marketing templates only"
    );

    // The live audience: the pro plan, staff left out.
    let (s, _, body) = ui
        .post(
            &owner,
            "/campaigns/audience",
            &[("audience.segments", &pro_id), ("audience.exclude", &staff_id)],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("data-count=\"5\""), "{body}");

    // Adding a variant re-renders the form with it.
    let base = |share: &'static str, second: &str| -> Vec<(&'static str, String)> {
        vec![
            ("name", format!("Spring {SCRIPT}")),
            ("audience.segments", pro_id.clone()),
            ("audience.exclude", staff_id.clone()),
            ("channel", String::new()),
            ("variants[0].name", "Short".into()),
            ("variants[0].template", a_id.clone()),
            ("variants[0].delay_unit", "hours".into()),
            ("variants[1].name", "Long".into()),
            ("variants[1].template", second.to_owned()),
            ("variants[1].delay_unit", "hours".into()),
            ("test", "on".into()),
            ("test.share", share.into()),
            ("test.metric", "click_rate".into()),
            ("test.duration", "4".into()),
            ("test.duration_unit", "hours".into()),
            ("test.rule", "probability_to_be_best".into()),
            ("test.rule.threshold", "0.95".into()),
            ("test.rule.alpha", "0.05".into()),
            ("test.fallback", "control".into()),
            ("holdout", "0".into()),
        ]
    };
    let fields = |v: &[(&'static str, String)], action: &'static str| -> Vec<(&'static str, String)> {
        let mut v = v.to_vec();
        v.push(("action", action.into()));
        v
    };
    let post_form = |v: Vec<(&'static str, String)>, path: String| {
        let ui = &ui;
        let owner = &owner;
        async move {
            let pairs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ui.post(owner, &path, &pairs, true).await
        }
    };
    let (s, _, body) = post_form(
        vec![
            ("name", "x".into()),
            ("variants[0].name", "A".into()),
            ("action", "add_variant".into()),
        ],
        "/campaigns/new".into(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("name=\"variants[1].name\" value=\"B\""), "{body}");

    // A bad share and a transactional template: each problem at its field.
    let (s, _, body) = post_form(fields(&base("150", &receipt_id), "save"), "/campaigns/new".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let share = body.find("name=\"test.share\"").unwrap();
    let problem = body.find("a percent of the audience from 1 to 100").unwrap();
    assert!(
        problem > share && problem < body.find("name=\"test.rule\"").unwrap(),
        "{body}"
    );
    let template = body.find("name=\"variants[1].template\"").unwrap();
    let problem = body.find("is transactional").unwrap();
    assert!(problem > template && problem < body.find("id=\"add-variant\"").unwrap());
    assert!(!body.contains(SCRIPT), "the typed name is escaped when shown back");
    // A share that is not a number is the form's own problem, at the same field.
    let (s, _, body) = post_form(fields(&base("half", &b_id), "check"), "/campaigns/new".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(plain(&body).contains("Write a whole number."));

    // Analysts may not save; without the CSRF token nobody may.
    let pairs = fields(&base("50", &b_id), "save");
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _, _) = ui.post(&analyst, "/campaigns/new", &pairs, true).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = ui.post(&owner, "/campaigns/new", &pairs, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Saved: the draft's page.
    let (s, location, _) = post_form(fields(&base("50", &b_id), "save"), "/campaigns/new".into()).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();
    let (s, page) = ui.get(&owner, &location).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("id=\"send-campaign\"") && page.contains("data-status=\"draft\""));
    assert!(!page.contains(SCRIPT));
    assert!(plain(&page).contains("5 contacts"), "the draft's audience now");
    let (_, page) = ui.get(&analyst, &location).await;
    assert!(!page.contains("id=\"send-campaign\""), "analysts see no Send button");
    let (s, _, _) = ui
        .post(&analyst, &format!("/campaigns/{id}/send"), &[("schedule", "now")], true)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The editor shows the saved draft.
    let (s, page) = ui.get(&owner, &format!("/campaigns/{id}/edit")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("name=\"test.share\" id=\"test-share\" value=\"50\""));

    // A time that is not one stays on the page, at its field.
    let (s, _, body) = ui
        .post(
            &owner,
            &format!("/campaigns/{id}/send"),
            &[("schedule", "local_time"), ("date", "2027-02-30"), ("time", "09:00")],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("a date as YYYY-MM-DD"), "{body}");

    // Sent now: the snapshot and the test share's messages.
    let (s, location, _) = ui
        .post(&owner, &format!("/campaigns/{id}/send"), &[("schedule", "now")], true)
        .await;
    assert_eq!(
        (s, location.as_str()),
        (StatusCode::SEE_OTHER, format!("/campaigns/{id}").as_str())
    );
    ui.settle().await;
    let c = ui.store.campaign(id).await.unwrap().unwrap();
    assert_eq!(c.audience, 5);
    let (s, live) = ui.get(&owner, &format!("/campaigns/{id}/live")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(live.contains("data-status=\"sending\"") && live.contains("hx-trigger=\"every 2s\""));
    assert_eq!(live.matches("data-variant=").count(), 2, "{live}");
    assert!(live.contains("id=\"pick-winner\""), "the test runs: a person may pick");
    assert!(plain(&live).contains("Probability to be best"));
    let (s, _) = ui.get(&owner, &format!("/campaigns/{id}/edit")).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "a sent campaign is not edited");

    // The owner picks B; the rest of the audience gets it; the campaign completes.
    let (s, _, _) = ui
        .post(&owner, &format!("/campaigns/{id}/winner"), &[("variant", "1")], true)
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    ui.settle().await;
    let (_, page) = ui.get(&owner, &format!("/campaigns/{id}")).await;
    let text = plain(&page);
    assert!(page.contains("data-status=\"completed\"") && !page.contains("hx-trigger=\"every 2s\""));
    assert!(text.contains("picked by owner@example.test"), "who decided");
    assert!(page.contains("id=\"winner-mark\""));
    assert!(page.contains("id=\"hourly\"") && page.contains("id=\"domains\""));
    assert!(!page.contains(SCRIPT));
    let (_, page) = ui.get(&analyst, &format!("/campaigns/{id}")).await;
    assert!(!page.contains("id=\"delete-campaign\""), "analysts delete nothing");

    // The CSV.
    let r = ui
        .http
        .get(format!("{}/campaigns/{id}/report.csv", ui.url))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("variant,name,"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "two variants and the holdout: {csv}");

    // The workspace report lists the campaign, escaped, with the totals.
    let (s, page) = ui.get(&analyst, "/reports").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("id=\"report-campaign\"") && page.contains(&format!("href=\"/campaigns/{id}\"")));
    assert!(!page.contains(SCRIPT));
    assert!(
        !page.contains("id=\"save-conversions\""),
        "analysts read the conversion settings"
    );
    let (s, page) = ui.get(&owner, "/reports?from=soon&until=2027-03-15").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(plain(&page).contains("Choose a date."));
    let r = ui
        .http
        .get(format!(
            "{}/reports/report.csv?from=2027-03-01&until=2027-03-15",
            ui.url
        ))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().starts_with("kind,key,name,"));

    // Conversion settings: owners only, each problem at its field.
    let settings = [
        ("events", "Order Completed\nSubscribed"),
        ("engaged_window", "5"),
        ("engaged_window_unit", "days"),
        ("delivered_window", "120"),
        ("delivered_window_unit", "days"),
    ];
    let (s, _, _) = ui.post(&analyst, "/reports/conversions", &settings, true).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = ui.post(&owner, "/reports/conversions", &settings, true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("must be between 0 and 90 days"),
        "the application's message"
    );
    let mut good = settings;
    good[3] = ("delivered_window", "1");
    let (s, location, _) = ui.post(&owner, "/reports/conversions", &good, true).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page) = ui.get(&owner, &location).await;
    assert!(page.contains("Subscribed"));

    // A completed campaign can be deleted.
    let (s, location, _) = ui.post(&owner, &format!("/campaigns/{id}/delete"), &[], true).await;
    assert_eq!((s, location.as_str()), (StatusCode::SEE_OTHER, "/campaigns"));
    let (s, _) = ui.get(&owner, &format!("/campaigns/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
