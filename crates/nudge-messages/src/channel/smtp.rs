//! Email over SMTP (lettre): a pool of connections, STARTTLS or TLS and
//! authentication from the URL, optional DKIM signing. Configured by
//! `NUDGE_SMTP_URL` (`smtp://user:pass@host:2525`, `?tls=required` for STARTTLS,
//! `smtps://` for implicit TLS) and `NUDGE_EMAIL_FROM`.

use super::*;
use crate::template::Rendered;
use lettre::address::Envelope;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    /// PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`) for RSA, or the base64 seed for Ed25519.
    pub private_key: String,
    pub ed25519: bool,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub url: String,
    /// The default sender, `Name <address>`.
    pub from: String,
    /// Connections kept open (and messages in flight).
    pub pool_size: u32,
    pub dkim: Option<DkimSettings>,
}

pub struct Smtp {
    transport: Transport,
    from: Mailbox,
    dkim: Option<DkimConfig>,
    /// For the admin API: the server URL without credentials, the DKIM domain.
    server: String,
    dkim_domain: Option<String>,
}

/// `smtp://` (plain or STARTTLS) uses Nudge's own connection pool, whose sockets send
/// without delay (`TCP_NODELAY`): lettre writes the end-of-data marker separately,
/// and with Nagle's algorithm each message then waits for a delayed ACK (~40 ms,
/// which capped delivery near 350 messages/s on loopback). `smtps://` (implicit TLS)
/// uses lettre's pool.
enum Transport {
    Own(Pool),
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

struct Pool {
    host: String,
    port: u16,
    starttls: Option<(TlsParameters, bool)>,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: std::sync::Mutex<Vec<AsyncSmtpConnection>>,
    max_idle: usize,
}

const TIMEOUT: Duration = Duration::from_secs(60);

impl Pool {
    fn from_url(raw: &str, max_idle: usize) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("the URL has no host")?.to_string();
        let port = url.port().unwrap_or(25);
        let mode = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let params = || TlsParameters::new(host.clone()).map_err(|e| format!("TLS: {e}"));
        let starttls = match mode.as_deref() {
            None | Some("none") => None,
            Some("opportunistic") => Some((params()?, false)),
            Some("required") => Some((params()?, true)),
            Some(other) => return Err(format!("tls={other}: use none, opportunistic or required")),
        };
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| {
                url::form_urlencoded::parse(s.as_bytes())
                    .map(|(k, _)| k.into_owned())
                    .collect::<String>()
            };
            Credentials::new(decode(url.username()), decode(url.password().unwrap_or("")))
        });
        Ok(Pool {
            host,
            port,
            starttls,
            credentials,
            hello: ClientId::default(),
            idle: std::sync::Mutex::new(Vec::new()),
            max_idle,
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let at = format!("{}:{}", self.host, self.port);
        let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| SendError::Transient(format!("connecting to {at} timed out")))?
            .map_err(|e| SendError::Transient(format!("connecting to {at}: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| SendError::Transient(format!("socket: {e}")))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(|e| classify(&e))?;
        if let Some((params, required)) = &self.starttls
            && (*required || conn.can_starttls())
        {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        if let Some(c) = &self.credentials {
            // A refused login is the configuration's fault, not the recipient's.
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(|e| SendError::Permanent(format!("SMTP authentication: {e}")))?;
        }
        Ok(conn)
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if !c.has_broken() {
                return Some(c);
            }
        }
        None
    }

    fn give_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if !conn.has_broken() && idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<String, SendError> {
        // A reused connection may have been closed by the server while idle: one
        // retry on a fresh connection when that is what failed.
        let (mut conn, reused) = match self.take_idle() {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let result = match tokio::time::timeout(TIMEOUT, conn.send(envelope, raw)).await {
            Ok(r) => r,
            Err(_) => {
                conn.abort().await;
                return Err(SendError::Transient("the SMTP server did not answer in time".into()));
            }
        };
        match result {
            Ok(response) => {
                self.give_back(conn);
                Ok(response.message().next().unwrap_or_default().to_string())
            }
            Err(e) if reused && e.status().is_none() => {
                let mut fresh = self.connect().await?;
                let r = fresh.send(envelope, raw).await;
                self.give_back(fresh);
                r.map(|response| response.message().next().unwrap_or_default().to_string())
                    .map_err(|e| classify(&e))
            }
            Err(e) => {
                self.give_back(conn);
                Err(classify(&e))
            }
        }
    }
}

impl Smtp {
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let transport = if config.url.starts_with("smtp://") {
            Transport::Own(
                Pool::from_url(&config.url, config.pool_size.max(1) as usize)
                    .map_err(|e| format!("SMTP URL {:?}: {e}", redact(&config.url)))?,
            )
        } else {
            let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
                .map_err(|e| format!("SMTP URL {:?}: {e}", redact(&config.url)))?;
            Transport::Lettre(
                builder
                    .pool_config(PoolConfig::new().max_size(config.pool_size.max(1)))
                    .timeout(Some(TIMEOUT))
                    .build(),
            )
        };
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("sender {:?} is not an email address: {e}", config.from))?;
        let dkim = match &config.dkim {
            None => None,
            Some(d) => {
                let algorithm = if d.ed25519 {
                    DkimSigningAlgorithm::Ed25519
                } else {
                    DkimSigningAlgorithm::Rsa
                };
                let key =
                    DkimSigningKey::new(&d.private_key, algorithm).map_err(|e| format!("DKIM private key: {e}"))?;
                let headers = [
                    "From",
                    "To",
                    "Subject",
                    "Date",
                    "Message-ID",
                    "Reply-To",
                    "List-Unsubscribe",
                    "List-Unsubscribe-Post",
                    // Not MIME-Version / Content-Type: lettre's signature over the folded
                    // multipart Content-Type does not verify (checked with dkimpy).
                ]
                .into_iter()
                .map(HeaderName::new_from_ascii_str)
                .collect();
                Some(DkimConfig::new(
                    d.selector.clone(),
                    d.domain.clone(),
                    key,
                    headers,
                    DkimCanonicalization {
                        header: DkimCanonicalizationType::Relaxed,
                        body: DkimCanonicalizationType::Relaxed,
                    },
                ))
            }
        };
        Ok(Smtp {
            transport,
            from,
            dkim,
            server: redact(&config.url),
            dkim_domain: config
                .dkim
                .as_ref()
                .map(|d| format!("{}._domainkey.{}", d.selector, d.domain)),
        })
    }

    /// The MIME message for `m` (public for tests and benchmarks).
    pub fn build(&self, m: &Outgoing) -> Result<lettre::Message, SendError> {
        let Rendered::Email {
            subject,
            from,
            reply_to,
            html,
            text,
        } = &m.content
        else {
            return Err(SendError::Permanent("the SMTP channel sends email only".into()));
        };
        let from: Mailbox = match from {
            Some(f) => f
                .parse()
                .map_err(|e| SendError::Permanent(format!("sender {f:?}: {e}")))?,
            None => self.from.clone(),
        };
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| SendError::Bounce(format!("recipient {:?} is not an email address: {e}", m.to)))?;
        let mut b = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject.clone())
            .message_id(Some(message_id(&m.idempotency_key, from.email.domain())));
        if let Some(r) = reply_to {
            b = b.reply_to(
                r.parse()
                    .map_err(|e| SendError::Permanent(format!("reply-to {r:?}: {e}")))?,
            );
        }
        for (name, value) in &m.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| SendError::Permanent(format!("bad header name {name:?}")))?;
            b = b.raw_header(HeaderValue::new(name, value.clone()));
        }
        let mut msg = b
            .multipart(MultiPart::alternative_plain_html(crlf(text), crlf(html)))
            .map_err(|e| SendError::Permanent(format!("building the email: {e}")))?;
        if let Some(d) = &self.dkim {
            msg.sign(d);
        }
        Ok(msg)
    }
}

/// `s` with every line ending `CRLF`, in one pass. lettre converts a body's bare
/// `LF`s itself, but by inserting each `CR` into the string in place (a copy of the
/// rest of the body per line: 17 KB of HTML made that a tenth of a delivery's
/// time); given `CRLF` endings it has nothing to insert.
fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    let mut rest = s;
    while let Some(i) = rest.find('\n') {
        let line = &rest[..i];
        out.push_str(line);
        out.push_str(if line.ends_with('\r') { "\n" } else { "\r\n" });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

/// `<hash-of-key@domain>`: the same idempotency key always gives the same id.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let hash = Sha256::digest(idempotency_key.as_bytes());
    format!("<{}@{domain}>", hex::encode(&hash[..16]))
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[async_trait]
impl Channel for Smtp {
    fn kind(&self) -> &'static str {
        "email"
    }
    fn transport(&self) -> &'static str {
        "smtp"
    }
    async fn send(&self, m: &Outgoing) -> Result<Option<String>, SendError> {
        let msg = self.build(m)?;
        match &self.transport {
            Transport::Own(pool) => pool.send(msg.envelope(), &msg.formatted()).await.map(Some),
            Transport::Lettre(t) => t
                .send(msg)
                .await
                .map(|r| r.message().next().map(str::to_string))
                .map_err(|e| classify(&e)),
        }
    }
    async fn health(&self) -> Result<(), String> {
        let answered = match &self.transport {
            Transport::Own(pool) => match pool.connect().await {
                Ok(mut conn) => {
                    let ok = conn.test_connected().await;
                    let _ = conn.quit().await;
                    Ok(ok)
                }
                Err(e) => Err(e.message().to_string()),
            },
            Transport::Lettre(t) => t.test_connection().await.map_err(|e| e.to_string()),
        };
        match answered {
            Ok(true) => Ok(()),
            Ok(false) => Err("the SMTP server did not answer NOOP".into()),
            Err(e) => Err(format!("SMTP: {e}")),
        }
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "server": self.server,
            "from": self.from.to_string(),
            "dkim": self.dkim_domain,
        })
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    match e.status().map(u16::from) {
        // Mailbox unavailable / unknown user / not allowed / bad address: the
        // recipient is the problem.
        Some(550 | 551 | 553) => SendError::Bounce(text),
        Some(_) if e.is_permanent() => SendError::Permanent(text),
        _ => SendError::Transient(text),
    }
}

#[cfg(test)]
mod tests {
    use super::crlf;

    #[test]
    fn crlf_ends_every_line_once() {
        assert_eq!(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf("\n\nfa: سلام\n"), "\r\n\r\nfa: سلام\r\n");
        assert_eq!(crlf("no newline"), "no newline");
        assert_eq!(crlf(""), "");
        // A lone CR is left as it is (lettre's rule too: only LF gains a CR).
        assert_eq!(crlf("a\rb"), "a\rb");
    }
}
