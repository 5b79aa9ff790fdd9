//! The command line: data management commands and their errors.

use std::process::{Command, Output};

fn nudge(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("NUDGE_DATABASE_URL")
        .env_remove("NUDGE_CONFIG")
        .env("NUDGE_LOG", "warn")
        .output()
        .expect("run nudge")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, needle: &str) {
    assert!(
        !out.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
}

#[test]
fn migrate_import_export_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(ok(&nudge(&data, &["migrate"])).contains("migrations applied (sqlite)"));

    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "user_id,email,plan\nu1,one@x.io,pro\nu2,two@x.io,free\n").unwrap();
    assert!(ok(&nudge(&data, &["import", csv.to_str().unwrap()])).contains("imported 2 rows: 2 created, 0 updated"));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "user_id,email\nu3,not-an-email\n").unwrap();
    fails(&nudge(&data, &["import", bad.to_str().unwrap()]), "line 2");
    fails(&nudge(&data, &["import", "/nonexistent.csv"]), "/nonexistent.csv");

    let out = dir.path().join("out.csv");
    ok(&nudge(&data, &["export", "--output", out.to_str().unwrap()]));
    let exported = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exported.lines().count(), 3, "{exported}");
    assert!(exported.contains("u2,two@x.io") && !exported.contains("u3"));

    let created = ok(&nudge(&data, &["keys", "create", "--kind", "write", "--name", "site"]));
    let secret = created.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("nw_"), "{created}");
    let list = ok(&nudge(&data, &["keys", "list"]));
    assert!(
        list.contains("site") && !list.contains(&secret),
        "secrets are never listed: {list}"
    );
    let id = list
        .lines()
        .find(|l| l.contains("site"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(ok(&nudge(&data, &["keys", "revoke", &id])).contains("revoked"));
    fails(&nudge(&data, &["keys", "revoke", &id]), "no active key");
    fails(&nudge(&data, &["keys", "create", "--kind", "root"]), "root");
}

#[test]
fn bad_settings_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    fails(
        &nudge(dir.path(), &["--listen", "not-an-address", "migrate"]),
        "not-an-address",
    );
    let cfg = dir.path().join("nudge.toml");
    std::fs::write(&cfg, "listen = 5\n").unwrap();
    fails(
        &nudge(dir.path(), &["--config", cfg.to_str().unwrap(), "migrate"]),
        "nudge.toml",
    );
    fails(
        &nudge(dir.path(), &["--database-url", "mysql://x", "migrate"]),
        "unsupported database URL",
    );
}

#[test]
fn journeys_are_installed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let list = ok(&nudge(&data, &["journeys", "list"]));
    assert!(list.contains("abandoned_cart") && list.contains("win_back"), "{list}");
    let out = ok(&nudge(&data, &["journeys", "install", "abandoned_cart", "--publish"]));
    assert!(out.contains("\"Abandoned cart\" (live)"), "{out}");
    let out = ok(&nudge(&data, &["journeys", "install", "win_back"]));
    assert!(out.contains("(draft)"), "{out}");
    let list = ok(&nudge(&data, &["journeys", "list"]));
    assert!(list.contains("Abandoned cart") && list.contains("Win-back"), "{list}");
    fails(
        &nudge(&data, &["journeys", "install", "nope"]),
        "no ready-made journey \"nope\"",
    );
}

/// `nudge campaigns`: a draft (made through the application layer, which the CLI has
/// no command for) is listed, sent at a time, paused, resumed, shown and cancelled; a
/// refused command says why.
#[test]
fn campaigns_from_the_command_line() {
    use nudge_store::{NewCampaign, NewSegment, NewTemplate};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&nudge(&data, &["migrate"]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = runtime.block_on(async {
        // The workspace's key, the one `nudge migrate` created.
        let (key, _) = nudge_store::secrets::KeyFile::new(data.join("secret.key"))
            .read_or_create()
            .unwrap();
        let store = nudge_store::open(None, &data, nudge_store::secrets::Keyring::new(key))
            .await
            .unwrap();
        let now = 1_805_112_000_000;
        store
            .create_template(
                NewTemplate {
                    name: "spring".into(),
                    description: String::new(),
                    channel: "email".into(),
                    transactional: false,
                    topic: None,
                    content: serde_json::json!({"channel": "email", "subject": "Spring", "html": "<p>Hi</p>"}),
                },
                now,
            )
            .await
            .unwrap();
        let definition = nudge_core::segment::parse_condition(
            &serde_json::json!({"type": "trait", "trait": "email", "op": "exists"}),
        )
        .unwrap();
        let segment = store
            .create_segment(
                NewSegment {
                    name: "Has email".into(),
                    description: String::new(),
                    definition,
                    administrative: false,
                },
                now,
            )
            .await
            .unwrap();
        let app = nudge_app::App::new(store.clone(), std::sync::Arc::new(nudge_core::SystemClock));
        let c = app
            .create_campaign(NewCampaign {
                name: "Spring sale".into(),
                description: String::new(),
                definition: serde_json::json!({"audience": {"segments": [segment.id]},
                    "variants": [{"name": "Only", "template": "spring"}]}),
            })
            .await
            .unwrap();
        store.close().await;
        c.id.to_string()
    });
    let id = id.as_str();
    let list = ok(&nudge(&data, &["campaigns", "list"]));
    assert!(list.contains("draft") && list.contains("Spring sale"), "{list}");
    fails(
        &nudge(&data, &["campaigns", "send", id, "--at", "next week"]),
        "schedule.at",
    );
    let out = ok(&nudge(
        &data,
        &["campaigns", "send", id, "--at", "2099-01-01T09:00:00Z"],
    ));
    assert_eq!(out.trim(), "campaign 1 \"Spring sale\" is scheduled");
    assert!(ok(&nudge(&data, &["campaigns", "pause", id])).contains("is paused"));
    fails(
        &nudge(&data, &["campaigns", "pause", id]),
        "a paused campaign cannot pause",
    );
    assert!(ok(&nudge(&data, &["campaigns", "resume", id])).contains("is scheduled"));
    let show = ok(&nudge(&data, &["campaigns", "show", id]));
    assert!(
        show.contains("starts 2099-01-01T09:00:00.000Z") && show.contains("Only"),
        "{show}"
    );
    assert!(ok(&nudge(&data, &["campaigns", "cancel", id])).contains("is cancelled"));
    fails(&nudge(&data, &["campaigns", "show", "999"]), "no campaign 999");
}
