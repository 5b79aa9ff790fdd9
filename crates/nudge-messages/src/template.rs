//! Templates: what a message says on each channel, personalised with Liquid.
//!
//! Pure: [`compile`] validates a template version and does the expensive work once
//! (Liquid parsing, MJML → HTML, CSS inlining, the generated text part);
//! [`Compiled::render`] runs only Liquid, within [`liquid_env::LIMITS`].

pub mod html;
pub mod liquid_env;

use liquid_env::Lenient;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest template source accepted, per field.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// A template version's content, one shape per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    Email(EmailContent),
    Sms(SmsContent),
    Push(PushContent),
    Webhook(WebhookContent),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailContent {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// `Name <address>`; the channel's default sender when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The body in MJML; exactly one of `mjml` and `html`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mjml: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The plain-text part; generated from the HTML when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsContent {
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushContent {
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookContent {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "POST".into()
}

impl Content {
    pub fn channel(&self) -> &'static str {
        match self {
            Content::Email(_) => "email",
            Content::Sms(_) => "sms",
            Content::Push(_) => "push",
            Content::Webhook(_) => "webhook",
        }
    }
}

/// One problem with a template, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateError {
    /// The content field: `subject`, `mjml`, `headers.X-Key`, ...
    pub field: String,
    /// 1-based line in that field, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} line {}: {}", self.field, l, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// A Liquid field, parsed.
pub struct Field {
    name: String,
    template: liquid::Template,
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Field({})", self.name)
    }
}

impl Field {
    fn render(&self, data: &Lenient) -> Result<String, TemplateError> {
        liquid_env::render(&self.template, data, liquid_env::LIMITS).map_err(|message| TemplateError {
            field: self.name.clone(),
            line: None,
            message,
        })
    }
}

/// A template version ready to render many times.
#[derive(Debug)]
pub enum Compiled {
    Email {
        subject: Field,
        from: Option<Field>,
        reply_to: Option<Field>,
        html: Field,
        text: Field,
    },
    Sms {
        body: Field,
    },
    Push {
        title: Field,
        body: Field,
        url: Option<Field>,
    },
    Webhook {
        method: String,
        url: Field,
        headers: Vec<(String, Field)>,
        body: Field,
    },
}

/// What a template says to one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Rendered {
    Email {
        subject: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        html: String,
        text: String,
    },
    Sms {
        body: String,
    },
    Push {
        title: String,
        body: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    Webhook {
        method: String,
        url: String,
        headers: BTreeMap<String, String>,
        body: String,
    },
}

fn parse_field(name: &str, src: &str, errors: &mut Vec<TemplateError>) -> Option<Field> {
    if src.len() > MAX_SOURCE_BYTES {
        errors.push(TemplateError {
            field: name.into(),
            line: None,
            message: format!("is {} bytes; the limit is {MAX_SOURCE_BYTES}", src.len()),
        });
        return None;
    }
    match liquid_env::parser().parse(src) {
        Ok(template) => Some(Field {
            name: name.into(),
            template,
        }),
        Err(e) => {
            errors.push(liquid_error(name, &e.to_string()));
            None
        }
    }
}

/// A Liquid parse error as a field, a line and one readable sentence.
fn liquid_error(field: &str, text: &str) -> TemplateError {
    // Parse errors look like " --> 3:7 | ... = expected Identifier".
    let line = text
        .find("--> ")
        .and_then(|at| text[at + 4..].split(':').next())
        .and_then(|l| l.trim().parse().ok());
    let detail = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("= "))
        .map(|l| l.trim_start_matches("= ").to_string())
        .unwrap_or_else(|| {
            text.trim_start_matches("liquid: ")
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    TemplateError {
        field: field.into(),
        line,
        message: format!("Liquid: {detail}"),
    }
}

/// Validates a template version and prepares it for rendering. All problems are
/// reported at once.
pub fn compile(content: &Content) -> Result<Compiled, Vec<TemplateError>> {
    let mut errors = Vec::new();
    let compiled = match content {
        Content::Email(e) => compile_email(e, &mut errors),
        Content::Sms(s) => {
            if s.body.trim().is_empty() {
                errors.push(required("body"));
            }
            parse_field("body", &s.body, &mut errors).map(|body| Compiled::Sms { body })
        }
        Content::Push(p) => {
            if p.title.trim().is_empty() {
                errors.push(required("title"));
            }
            let title = parse_field("title", &p.title, &mut errors);
            let body = parse_field("body", &p.body, &mut errors);
            let url = p.url.as_deref().map(|u| parse_field("url", u, &mut errors));
            match (title, body, url) {
                (Some(title), Some(body), None) => Some(Compiled::Push { title, body, url: None }),
                (Some(title), Some(body), Some(Some(url))) => Some(Compiled::Push {
                    title,
                    body,
                    url: Some(url),
                }),
                _ => None,
            }
        }
        Content::Webhook(w) => {
            let method = w.method.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                errors.push(TemplateError {
                    field: "method".into(),
                    line: None,
                    message: format!("{:?} is not one of GET, POST, PUT, PATCH, DELETE", w.method),
                });
            }
            if w.url.trim().is_empty() {
                errors.push(required("url"));
            }
            let url = parse_field("url", &w.url, &mut errors);
            let body = parse_field("body", &w.body, &mut errors);
            let mut headers = Vec::new();
            for (k, v) in &w.headers {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    errors.push(TemplateError {
                        field: format!("headers.{k}"),
                        line: None,
                        message: "header names are letters, digits, '-' and '_'".into(),
                    });
                }
                if let Some(f) = parse_field(&format!("headers.{k}"), v, &mut errors) {
                    headers.push((k.clone(), f));
                }
            }
            match (url, body) {
                (Some(url), Some(body)) => Some(Compiled::Webhook {
                    method,
                    url,
                    headers,
                    body,
                }),
                _ => None,
            }
        }
    };
    match compiled {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

fn required(field: &str) -> TemplateError {
    TemplateError {
        field: field.into(),
        line: None,
        message: "is required".into(),
    }
}

fn compile_email(e: &EmailContent, errors: &mut Vec<TemplateError>) -> Option<Compiled> {
    if e.subject.trim().is_empty() {
        errors.push(required("subject"));
    }
    let subject = parse_field("subject", &e.subject, errors);
    let preheader = e.preheader.as_deref().map(|p| parse_field("preheader", p, errors));
    let from = e.from.as_deref().map(|p| parse_field("from", p, errors));
    let reply_to = e.reply_to.as_deref().map(|p| parse_field("reply_to", p, errors));
    let (field, source) = match (&e.mjml, &e.html) {
        (Some(m), None) => ("mjml", m),
        (None, Some(h)) => ("html", h),
        (Some(_), Some(_)) => {
            errors.push(TemplateError {
                field: "mjml".into(),
                line: None,
                message: "give either mjml or html, not both".into(),
            });
            return None;
        }
        (None, None) => {
            errors.push(TemplateError {
                field: "html".into(),
                line: None,
                message: "an email needs mjml or html".into(),
            });
            return None;
        }
    };
    // The source itself must be valid Liquid: errors then carry the author's lines.
    parse_field(field, source, errors)?;
    let given_text = e.text.as_deref().map(|t| parse_field("text", t, errors));

    let protected = html::protect(source, true);
    let body = if field == "mjml" {
        match html::mjml_to_html(&protected.text) {
            Ok(h) => h,
            Err((line, message)) => {
                errors.push(TemplateError {
                    field: "mjml".into(),
                    line,
                    message: format!("MJML: {message}"),
                });
                return None;
            }
        }
    } else {
        protected.text.clone()
    };
    let body = match html::inline_css(&body) {
        Ok(b) => b,
        Err(message) => {
            errors.push(TemplateError {
                field: field.into(),
                line: None,
                message,
            });
            return None;
        }
    };
    let text_source = match given_text {
        Some(t) => Some(t),
        None => {
            // Text from the HTML with the raw (unescaped) Liquid put back.
            let raw = html::protect(source, false);
            let generated = html::html_to_text(&body);
            let restored = raw.restore(&generated);
            Some(parse_field("text", &restored, errors))
        }
    };
    let mut html_source = protected.restore(&body);
    if let Some(p) = e.preheader.as_deref().filter(|p| !p.is_empty()) {
        let escaped = html::protect(p, true);
        html_source = html::with_preheader(&html_source, &escaped.restore(&escaped.text));
    }
    let html = parse_field(field, &html_source, errors);
    match (subject, preheader, from, reply_to, html, text_source) {
        (Some(subject), _, from, reply_to, Some(html), Some(Some(text))) => Some(Compiled::Email {
            subject,
            from: from.flatten(),
            reply_to: reply_to.flatten(),
            html,
            text,
        }),
        _ => None,
    }
}

/// Whether a stored template's content mentions `recommendations` (then the data it
/// is rendered with carries them: `nudge_core::recommend::template_data`).
pub fn reads_recommendations(content: &serde_json::Value) -> bool {
    fn any(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains("recommendations"),
            serde_json::Value::Array(a) => a.iter().any(any),
            serde_json::Value::Object(o) => o.values().any(any),
            _ => false,
        }
    }
    any(content)
}

/// The data a template sees: `contact`, `event`, `workspace`, `message` and any extra
/// top-level values (links such as `unsubscribe_url`).
#[derive(Debug, Clone, Default)]
pub struct RenderData {
    pub contact: serde_json::Value,
    pub event: serde_json::Value,
    pub workspace: serde_json::Value,
    pub message: serde_json::Value,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl RenderData {
    fn lenient(&self) -> Lenient {
        let mut root = serde_json::Map::new();
        root.insert("contact".into(), self.contact.clone());
        root.insert("event".into(), self.event.clone());
        root.insert("workspace".into(), self.workspace.clone());
        root.insert("message".into(), self.message.clone());
        for (k, v) in &self.extra {
            root.insert(k.clone(), v.clone());
        }
        Lenient::from_json(&serde_json::Value::Object(root))
    }
}

impl Compiled {
    pub fn channel(&self) -> &'static str {
        match self {
            Compiled::Email { .. } => "email",
            Compiled::Sms { .. } => "sms",
            Compiled::Push { .. } => "push",
            Compiled::Webhook { .. } => "webhook",
        }
    }

    /// Renders for one contact. Fails only on render errors (a filter given the wrong
    /// type, a limit reached), never on missing data.
    pub fn render(&self, data: &RenderData) -> Result<Rendered, TemplateError> {
        let data = data.lenient();
        let opt = |f: &Option<Field>| f.as_ref().map(|f| f.render(&data)).transpose();
        Ok(match self {
            Compiled::Email {
                subject,
                from,
                reply_to,
                html,
                text,
            } => Rendered::Email {
                subject: one_line(&subject.render(&data)?),
                from: opt(from)?.map(|s| one_line(&s)).filter(|s| !s.is_empty()),
                reply_to: opt(reply_to)?.map(|s| one_line(&s)).filter(|s| !s.is_empty()),
                html: html.render(&data)?,
                text: text.render(&data)?,
            },
            Compiled::Sms { body } => Rendered::Sms {
                body: body.render(&data)?,
            },
            Compiled::Push { title, body, url } => Rendered::Push {
                title: title.render(&data)?,
                body: body.render(&data)?,
                url: opt(url)?.filter(|u| !u.is_empty()),
            },
            Compiled::Webhook {
                method,
                url,
                headers,
                body,
            } => Rendered::Webhook {
                method: method.clone(),
                url: url.render(&data)?.trim().to_string(),
                headers: headers
                    .iter()
                    .map(|(k, f)| Ok((k.clone(), one_line(&f.render(&data)?))))
                    .collect::<Result<_, TemplateError>>()?,
                body: body.render(&data)?,
            },
        })
    }
}

/// Renders one Liquid source with arbitrary top-level data (tests, previews of a
/// single field).
pub fn render_liquid(src: &str, data: &serde_json::Value) -> Result<String, TemplateError> {
    let mut errors = Vec::new();
    let Some(field) = parse_field("template", src, &mut errors) else {
        return Err(errors.remove(0));
    };
    field.render(&Lenient::from_json(data))
}

/// Headers are one line: newlines in personalised values become spaces.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
