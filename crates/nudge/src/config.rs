//! Settings: defaults, then a TOML file (`--config`, `NUDGE_CONFIG` or `./nudge.toml`),
//! then `NUDGE_*` environment variables, then command-line flags; later wins.

use anyhow::{Context, bail};
use nudge_app::nodes::Roles;
use nudge_store::secrets::{KeyFile, MasterKey};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A secret whose `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Directory of the embedded SQLite database (`nudge.db`).
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of the embedded database.
    pub database_url: Option<Secret>,
    /// Bootstrap admin key (registered at start if not yet known).
    pub admin_key: Option<Secret>,
    /// Bootstrap write key.
    pub write_key: Option<Secret>,
    /// `text` or `json`.
    pub log_format: String,
    /// Requests allowed to wait for an ingest commit before answering 503.
    pub ingest_queue: usize,
    /// Where this server is reachable by message readers (tracking, unsubscribe
    /// links). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Workspace name shown in templates (`{{ workspace.name }}`) and pages.
    pub workspace_name: String,
    /// `smtp://user:pass@host:port` (`?tls=required` for STARTTLS, `smtps://` for
    /// TLS). Without it, email is captured (kept, readable through the API).
    pub smtp_url: Option<Secret>,
    /// Default sender of email, `Name <address>`.
    pub email_from: String,
    /// SMTP connections (and emails in flight).
    pub smtp_pool: u32,
    /// Emails per second at most (none: as fast as the server takes them).
    pub email_rate: Option<f64>,
    /// DKIM: selector, domain and a PKCS#1 PEM RSA key file; all three or none.
    pub dkim_selector: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_key_file: Option<PathBuf>,
    /// A Twilio-compatible SMS API (`https://api.twilio.com`); without it SMS is captured.
    pub sms_url: Option<String>,
    pub sms_account: Option<String>,
    pub sms_token: Option<Secret>,
    pub sms_from: Option<String>,
    /// The contact push services may use to reach the sender of push messages
    /// (VAPID `sub`): `mailto:...` or `https://...`.
    pub vapid_subject: String,
    /// Accept push subscriptions whose endpoint is this machine or a private network
    /// (development only: otherwise anyone with the write key could make Nudge post
    /// to internal services).
    pub push_allow_local: bool,
    /// Take a form submitter's address from `X-Forwarded-For` (Nudge runs behind a
    /// proxy that sets it) for the per-address rate limit; otherwise the peer's.
    pub trust_forwarded_for: bool,
    /// The master key that seals the secrets the database keeps: 32 bytes as 64 hex
    /// digits or base64. Without it, the key file is used.
    pub secret_key: Option<Secret>,
    /// The file holding the master key (created, mode 0600, on first start when
    /// there is neither key nor file). Default: `<data_dir>/secret.key`.
    pub secret_key_file: Option<PathBuf>,
    /// Hours between scheduled refits of the lifetime-value models
    /// (docs/predictions.md); 0: only when asked (`POST /api/v1/predictions/fit`).
    pub prediction_refit_hours: u32,
    /// Minutes between scheduled refreshes of the product recommendations
    /// (docs/recommendations.md); 0: only when asked
    /// (`POST /api/v1/recommendations/refresh`).
    pub recommendation_refresh_minutes: u32,
    /// Seconds between checks of the configuration versions (docs/operations.md,
    /// "Live configuration"): how late a change made on another node arrives here
    /// at most when its notification was lost. At least 1.
    pub config_check_seconds: u32,
    /// Listen for PostgreSQL notifications of configuration changes (changes made on
    /// other nodes apply at once); `false`: only the periodic check.
    pub config_listen: bool,
    /// What `nudge serve` runs (docs/operations.md, "Roles"): `api`, `ingest`,
    /// `engine`, `delivery`; all of them by default.
    #[serde(deserialize_with = "roles_from_list")]
    pub roles: Roles,
    /// Seconds a singleton lease lasts without renewal (renewed every third of it);
    /// a dead node's singletons move to another within this plus a third.
    pub singleton_lease_seconds: u32,
    /// Seconds a claim on a row of shared work (an outbox message, a journey event or
    /// timer) lasts: a node that dies holding claims leaves that work to the others
    /// this long after it claimed it. Longer than a round takes; `None`: 120 s for
    /// messages, 60 s for journey work.
    pub claim_lease_seconds: Option<u32>,
}

fn roles_from_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Roles, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Roles::parse(&names.join(",")).map_err(serde::de::Error::custom)
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("nudge-data"),
            database_url: None,
            admin_key: None,
            write_key: None,
            log_format: "text".into(),
            ingest_queue: 4096,
            public_url: None,
            workspace_name: "Nudge".into(),
            smtp_url: None,
            email_from: "Nudge <nudge@localhost>".into(),
            smtp_pool: 8,
            email_rate: None,
            dkim_selector: None,
            dkim_domain: None,
            dkim_key_file: None,
            sms_url: None,
            sms_account: None,
            sms_token: None,
            sms_from: None,
            vapid_subject: "mailto:nudge@localhost".into(),
            push_allow_local: false,
            trust_forwarded_for: false,
            secret_key: None,
            secret_key_file: None,
            prediction_refit_hours: 24,
            recommendation_refresh_minutes: 60,
            config_check_seconds: 5,
            config_listen: true,
            roles: Roles::all(),
            singleton_lease_seconds: 15,
            claim_lease_seconds: None,
        }
    }
}

/// Values given on the command line (they override everything else).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Settings file (TOML). Default: $NUDGE_CONFIG, else ./nudge.toml if it exists.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080 [env: NUDGE_LISTEN]
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Data directory for the embedded database [env: NUDGE_DATA_DIR]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// postgres://... to use PostgreSQL [env: NUDGE_DATABASE_URL]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// What this node runs, comma-separated: api (admin API and web UI), ingest
    /// (tracking, forms, links), engine (segments, journeys, campaigns, models),
    /// delivery (sending); all by default [env: NUDGE_ROLES]
    #[arg(long, global = true, value_parser = parse_roles, value_name = "ROLE,...")]
    pub roles: Option<Roles>,
}

fn parse_roles(s: &str) -> Result<Roles, String> {
    Roles::parse(s)
}

impl Settings {
    pub fn load(o: &Overrides) -> anyhow::Result<Self> {
        Self::load_from(o, |k| std::env::var(k).ok())
    }

    pub fn load_from(o: &Overrides, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file = o
            .config
            .clone()
            .or_else(|| env("NUDGE_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let p = Path::new("nudge.toml");
                p.exists().then(|| p.to_path_buf())
            });
        let mut s = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading settings file {}", path.display()))?;
                toml::from_str::<Settings>(&text).with_context(|| format!("settings file {}", path.display()))?
            }
            None => Settings::default(),
        };
        let secret = |k: &str| env(k).filter(|v| !v.is_empty()).map(Secret);
        if let Some(v) = env("NUDGE_LISTEN") {
            s.listen = v;
        }
        if let Some(v) = env("NUDGE_DATA_DIR") {
            s.data_dir = v.into();
        }
        if let Some(v) = secret("NUDGE_DATABASE_URL") {
            s.database_url = Some(v);
        }
        if let Some(v) = secret("NUDGE_ADMIN_KEY") {
            s.admin_key = Some(v);
        }
        if let Some(v) = secret("NUDGE_WRITE_KEY") {
            s.write_key = Some(v);
        }
        if let Some(v) = env("NUDGE_LOG_FORMAT") {
            s.log_format = v;
        }
        if let Some(v) = env("NUDGE_INGEST_QUEUE") {
            s.ingest_queue = v
                .parse()
                .with_context(|| format!("NUDGE_INGEST_QUEUE={v:?} is not a number"))?;
        }
        let text = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(v) = text("NUDGE_PUBLIC_URL") {
            s.public_url = Some(v);
        }
        if let Some(v) = text("NUDGE_WORKSPACE_NAME") {
            s.workspace_name = v;
        }
        if let Some(v) = secret("NUDGE_SMTP_URL") {
            s.smtp_url = Some(v);
        }
        if let Some(v) = text("NUDGE_EMAIL_FROM") {
            s.email_from = v;
        }
        if let Some(v) = text("NUDGE_SMTP_POOL") {
            s.smtp_pool = v
                .parse()
                .with_context(|| format!("NUDGE_SMTP_POOL={v:?} is not a number"))?;
        }
        if let Some(v) = text("NUDGE_EMAIL_RATE") {
            s.email_rate = Some(
                v.parse()
                    .with_context(|| format!("NUDGE_EMAIL_RATE={v:?} is not a number"))?,
            );
        }
        if let Some(v) = text("NUDGE_DKIM_SELECTOR") {
            s.dkim_selector = Some(v);
        }
        if let Some(v) = text("NUDGE_DKIM_DOMAIN") {
            s.dkim_domain = Some(v);
        }
        if let Some(v) = text("NUDGE_DKIM_KEY_FILE") {
            s.dkim_key_file = Some(v.into());
        }
        if let Some(v) = text("NUDGE_SMS_URL") {
            s.sms_url = Some(v);
        }
        if let Some(v) = text("NUDGE_SMS_ACCOUNT") {
            s.sms_account = Some(v);
        }
        if let Some(v) = secret("NUDGE_SMS_TOKEN") {
            s.sms_token = Some(v);
        }
        if let Some(v) = text("NUDGE_SMS_FROM") {
            s.sms_from = Some(v);
        }
        if let Some(v) = text("NUDGE_VAPID_SUBJECT") {
            s.vapid_subject = v;
        }
        if let Some(v) = text("NUDGE_PUSH_ALLOW_LOCAL") {
            s.push_allow_local = match v.as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => anyhow::bail!("NUDGE_PUSH_ALLOW_LOCAL={v:?} must be true or false"),
            };
        }
        if let Some(v) = text("NUDGE_TRUST_FORWARDED_FOR") {
            s.trust_forwarded_for = match v.as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => anyhow::bail!("NUDGE_TRUST_FORWARDED_FOR={v:?} must be true or false"),
            };
        }
        if let Some(v) = secret("NUDGE_SECRET_KEY") {
            s.secret_key = Some(v);
        }
        if let Some(v) = text("NUDGE_SECRET_KEY_FILE") {
            s.secret_key_file = Some(v.into());
        }
        if let Some(v) = text("NUDGE_PREDICTION_REFIT_HOURS") {
            s.prediction_refit_hours = v
                .parse()
                .with_context(|| format!("NUDGE_PREDICTION_REFIT_HOURS={v:?} is not a whole number of hours"))?;
        }
        if let Some(v) = text("NUDGE_RECOMMENDATION_REFRESH_MINUTES") {
            s.recommendation_refresh_minutes = v.parse().with_context(|| {
                format!("NUDGE_RECOMMENDATION_REFRESH_MINUTES={v:?} is not a whole number of minutes")
            })?;
        }
        if let Some(v) = text("NUDGE_CONFIG_CHECK_SECONDS") {
            s.config_check_seconds = v
                .parse()
                .with_context(|| format!("NUDGE_CONFIG_CHECK_SECONDS={v:?} is not a whole number of seconds"))?;
        }
        if let Some(v) = text("NUDGE_CONFIG_LISTEN") {
            s.config_listen = match v.as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => anyhow::bail!("NUDGE_CONFIG_LISTEN={v:?} must be true or false"),
            };
        }
        if let Some(v) = text("NUDGE_ROLES") {
            s.roles = Roles::parse(&v).map_err(|e| anyhow::anyhow!("NUDGE_ROLES={v:?}: {e}"))?;
        }
        if let Some(v) = text("NUDGE_SINGLETON_LEASE_SECONDS") {
            s.singleton_lease_seconds = v
                .parse()
                .with_context(|| format!("NUDGE_SINGLETON_LEASE_SECONDS={v:?} is not a whole number of seconds"))?;
        }
        if let Some(v) = text("NUDGE_CLAIM_LEASE_SECONDS") {
            s.claim_lease_seconds = Some(
                v.parse()
                    .with_context(|| format!("NUDGE_CLAIM_LEASE_SECONDS={v:?} is not a whole number of seconds"))?,
            );
        }
        if let Some(v) = o.roles {
            s.roles = v;
        }
        if s.singleton_lease_seconds == 0 {
            bail!("singleton_lease_seconds must be at least 1");
        }
        if s.claim_lease_seconds == Some(0) {
            bail!("claim_lease_seconds must be at least 1");
        }
        if let Some(v) = &o.listen {
            s.listen = v.clone();
        }
        if let Some(v) = &o.data_dir {
            s.data_dir = v.clone();
        }
        if let Some(v) = &o.database_url {
            s.database_url = Some(Secret(v.clone()));
        }
        if s.config_check_seconds == 0 {
            bail!("config_check_seconds must be at least 1");
        }
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("listen address {:?} is not host:port (e.g. 127.0.0.1:8080)", s.listen);
        }
        if !(s.vapid_subject.starts_with("mailto:") || s.vapid_subject.starts_with("https://")) {
            bail!(
                "vapid_subject {:?} must be a mailto: or https:// contact",
                s.vapid_subject
            );
        }
        if !matches!(s.log_format.as_str(), "text" | "json") {
            bail!("log_format {:?} must be \"text\" or \"json\"", s.log_format);
        }
        Ok(s)
    }

    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_ref().map(|s| s.0.as_str())
    }

    /// Where the master key file is: `secret_key_file`, else `<data_dir>/secret.key`.
    pub fn key_file(&self) -> KeyFile {
        KeyFile::new(
            self.secret_key_file
                .clone()
                .unwrap_or_else(|| self.data_dir.join("secret.key")),
        )
    }

    /// The master key: `secret_key` if set, else the key file's, else a new key
    /// written to the key file (logged with the file's path, never the key).
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(text) = &self.secret_key {
            return MasterKey::parse(&text.0).map_err(|e| anyhow::anyhow!("NUDGE_SECRET_KEY: {e}"));
        }
        let file = self.key_file();
        let (key, created) = file.read_or_create()?;
        if created {
            tracing::warn!(
                path = %file.path.display(),
                key_id = key.id(),
                "created a new secret key file: it seals the secrets in the database; back it up apart from the database"
            );
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/nudge\"\nadmin_key = \"from-file\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = Settings::load_from(&o, |_| None).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.admin_key, Some(Secret("from-file".into())));
        assert_eq!(format!("{:?}", s.admin_key), "Some(\"***\")", "secrets never print");
        let env = |k: &str| match k {
            "NUDGE_LISTEN" => Some("127.0.0.1:7000".to_string()),
            "NUDGE_ADMIN_KEY" => Some("from-env".to_string()),
            _ => None,
        };
        let s = Settings::load_from(&o, env).unwrap();
        assert_eq!(
            (s.listen.as_str(), s.admin_key.unwrap().0.as_str()),
            ("127.0.0.1:7000", "from-env")
        );
        let o2 = Overrides {
            listen: Some("127.0.0.1:1".into()),
            ..o
        };
        assert_eq!(Settings::load_from(&o2, env).unwrap().listen, "127.0.0.1:1");
    }

    #[test]
    fn claim_leases_keep_their_defaults_unless_set() {
        let o = Overrides::default();
        assert_eq!(Settings::load_from(&o, |_| None).unwrap().claim_lease_seconds, None);
        let env = |v: &'static str| move |k: &str| (k == "NUDGE_CLAIM_LEASE_SECONDS").then(|| v.to_string());
        assert_eq!(
            Settings::load_from(&o, env("10")).unwrap().claim_lease_seconds,
            Some(10)
        );
        let e = Settings::load_from(&o, env("0")).unwrap_err().to_string();
        assert!(e.contains("claim_lease_seconds must be at least 1"), "{e}");
        let e = format!("{:#}", Settings::load_from(&o, env("soon")).unwrap_err());
        assert!(e.contains("NUDGE_CLAIM_LEASE_SECONDS"), "{e}");
    }

    #[test]
    fn roles_come_from_the_file_the_environment_or_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.toml");
        std::fs::write(&file, "roles = [\"engine\", \"delivery\"]\n").unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        assert!(
            Settings::load_from(&Overrides::default(), |_| None)
                .unwrap()
                .roles
                .is_all()
        );
        assert_eq!(
            Settings::load_from(&o, |_| None).unwrap().roles.to_string(),
            "engine,delivery"
        );
        let env = |k: &str| (k == "NUDGE_ROLES").then(|| "api,ingest".to_string());
        assert_eq!(Settings::load_from(&o, env).unwrap().roles.to_string(), "api,ingest");
        let flag = Overrides {
            roles: Some(Roles::parse("engine").unwrap()),
            ..o.clone()
        };
        assert_eq!(Settings::load_from(&flag, env).unwrap().roles.to_string(), "engine");
        let bad = |k: &str| (k == "NUDGE_ROLES").then(|| "api,workers".to_string());
        let e = format!("{:#}", Settings::load_from(&o, bad).unwrap_err());
        assert!(e.contains("NUDGE_ROLES") && e.contains("\"workers\""), "{e}");
        std::fs::write(&file, "roles = [\"apis\"]\n").unwrap();
        let e = format!("{:#}", Settings::load_from(&o, |_| None).unwrap_err());
        assert!(e.contains("apis"), "{e}");
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let o = Overrides {
            config: Some(file),
            ..Default::default()
        };
        let err = format!("{:#}", Settings::load_from(&o, |_| None).unwrap_err());
        assert!(err.contains("lisen"), "{err}");
        let o = Overrides {
            listen: Some("nowhere".into()),
            ..Default::default()
        };
        assert!(
            Settings::load_from(&o, |_| None)
                .unwrap_err()
                .to_string()
                .contains("nowhere")
        );
    }

    #[test]
    fn the_master_key_comes_from_the_environment_or_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        // No key: a key file is created in the data directory, and read next time.
        let s = Settings::load_from(&o, |_| None).unwrap();
        let created = s.master_key().unwrap();
        assert!(dir.path().join("secret.key").exists());
        assert_eq!(s.master_key().unwrap().id(), created.id());
        // NUDGE_SECRET_KEY wins; a bad one is named.
        let given = MasterKey::generate();
        let hex = given.to_hex();
        let s = Settings::load_from(&o, |k| (k == "NUDGE_SECRET_KEY").then(|| hex.clone())).unwrap();
        assert_eq!(s.master_key().unwrap().id(), given.id());
        assert_eq!(format!("{:?}", s.secret_key), "Some(\"***\")");
        let s = Settings::load_from(&o, |k| (k == "NUDGE_SECRET_KEY").then(|| "not a key!".to_string())).unwrap();
        let e = format!("{:#}", s.master_key().unwrap_err());
        assert!(e.contains("NUDGE_SECRET_KEY") && e.contains("neither"), "{e}");
        // NUDGE_SECRET_KEY_FILE names another file.
        let other = dir.path().join("elsewhere.key");
        let path = other.display().to_string();
        let s = Settings::load_from(&o, |k| (k == "NUDGE_SECRET_KEY_FILE").then(|| path.clone())).unwrap();
        assert_ne!(s.master_key().unwrap().id(), created.id());
        assert!(other.exists());
    }
}
