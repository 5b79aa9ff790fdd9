//! Signed links: open pixels, click redirects, unsubscribe and preference pages.
//!
//! A token names a message (and a link of it) and carries an HMAC-SHA256 over that
//! and the link's purpose, so it cannot be guessed, altered or reused for another
//! purpose, and it says nothing about the contact. Pure: the key is passed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a token may be used for; part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Open,
    Click,
    Unsubscribe,
    Preferences,
    Confirm,
    /// A form's render stamp: when it was shown (see `nudge_app::forms`).
    FormRender,
}

impl Purpose {
    fn tag(self) -> u8 {
        match self {
            Purpose::Open => b'o',
            Purpose::Click => b'c',
            Purpose::Unsubscribe => b'u',
            Purpose::Preferences => b'p',
            Purpose::Confirm => b'd',
            Purpose::FormRender => b'f',
        }
    }
    /// The path prefix of this purpose's public route.
    pub fn path(self) -> &'static str {
        match self {
            Purpose::Open => "/t/o/",
            Purpose::Click => "/t/c/",
            Purpose::Unsubscribe => "/u/",
            Purpose::Preferences => "/p/",
            Purpose::Confirm => "/confirm/",
            Purpose::FormRender => "/f/",
        }
    }
}

const SIG_LEN: usize = 16;

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, purpose: Purpose, body: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&[purpose.tag()]);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// A token for `subject` (a message or contact id) and `index` (a link number).
    pub fn token(&self, purpose: Purpose, subject: i64, index: u32) -> String {
        let mut body = Vec::with_capacity(12 + SIG_LEN);
        body.extend_from_slice(&subject.to_be_bytes());
        body.extend_from_slice(&index.to_be_bytes());
        let sig = self.mac(purpose, &body);
        body.extend_from_slice(&sig[..SIG_LEN]);
        URL_SAFE_NO_PAD.encode(body)
    }

    /// `(subject, index)` if the token is this signer's, for this purpose.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Option<(i64, u32)> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if raw.len() != 12 + SIG_LEN {
            return None;
        }
        let (body, sig) = raw.split_at(12);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&[purpose.tag()]);
        mac.update(body);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(sig).ok()?;
        let subject = i64::from_be_bytes(body[..8].try_into().ok()?);
        let index = u32::from_be_bytes(body[8..12].try_into().ok()?);
        Some((subject, index))
    }

    pub fn url(&self, base: &str, purpose: Purpose, subject: i64, index: u32) -> String {
        format!(
            "{}{}{}",
            base.trim_end_matches('/'),
            purpose.path(),
            self.token(purpose, subject, index)
        )
    }
}

/// Rewrites the `href` of every `<a>` tag that `track` accepts, in order; returns the
/// new HTML and the original URLs (entity-decoded), link *i* being `urls[i]`.
pub fn rewrite_links(html: &str, mut track: impl FnMut(usize, &str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(html.len() + 256);
    let mut urls = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(rel) = lower[pos..].find("<a") {
        let start = pos + rel;
        let after = lower.as_bytes().get(start + 2).copied();
        let Some(end) = lower[start..].find('>').map(|e| start + e) else {
            break;
        };
        if !matches!(after, Some(b' ' | b'\t' | b'\n' | b'\r')) {
            out.push_str(&html[pos..start + 2]);
            pos = start + 2;
            continue;
        }
        out.push_str(&html[pos..start]);
        let tag = &html[start..end];
        out.push_str(&rewrite_tag(tag, &mut urls, &mut track));
        pos = end;
    }
    out.push_str(&html[pos..]);
    (out, urls)
}

fn rewrite_tag(tag: &str, urls: &mut Vec<String>, track: &mut impl FnMut(usize, &str) -> Option<String>) -> String {
    let lower = tag.to_ascii_lowercase();
    if lower.contains("data-nudge-track=\"off\"") {
        return tag.to_string();
    }
    let Some(h) = find_attr(&lower, "href") else {
        return tag.to_string();
    };
    let rest = &tag[h..];
    let (quote, value_start) = match rest.as_bytes().first() {
        Some(b'"') => (Some('"'), h + 1),
        Some(b'\'') => (Some('\''), h + 1),
        _ => (None, h),
    };
    let value_end = match quote {
        Some(q) => tag[value_start..].find(q).map(|e| value_start + e),
        None => tag[value_start..]
            .find(|c: char| c.is_whitespace())
            .map(|e| value_start + e)
            .or(Some(tag.len())),
    };
    let Some(value_end) = value_end else {
        return tag.to_string();
    };
    let url = decode_entities(&tag[value_start..value_end]);
    let trimmed = url.trim();
    let lower_url = trimmed.to_ascii_lowercase();
    if !(lower_url.starts_with("http://") || lower_url.starts_with("https://")) {
        return tag.to_string();
    }
    match track(urls.len(), trimmed) {
        Some(new) => {
            urls.push(trimmed.to_string());
            format!("{}{}{}", &tag[..value_start], escape_attr(&new), &tag[value_end..])
        }
        None => tag.to_string(),
    }
}

/// Byte offset just past `name=` in a lower-cased tag (attribute name on its own).
fn find_attr(lower: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        let before_ok = lower[..at].ends_with(|c: char| c.is_whitespace());
        let rest = lower[at + name.len()..].trim_start();
        if before_ok && rest.starts_with('=') {
            let eq = lower.len() - rest.len();
            let value = lower[eq + 1..].trim_start();
            return Some(lower.len() - value.len());
        }
        from = at + name.len();
    }
    None
}

fn decode_entities(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// Adds a 1×1 open-tracking image at the end of the body.
pub fn add_pixel(html: &str, url: &str) -> String {
    let img = format!(
        "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\">",
        escape_attr(url)
    );
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{img}{}", &html[..at], &html[at..]),
        None => format!("{html}{img}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_purpose_and_key() {
        let s = Signer::new(b"secret");
        let t = s.token(Purpose::Click, 42, 3);
        assert_eq!(s.verify(Purpose::Click, &t), Some((42, 3)));
        assert_eq!(s.verify(Purpose::Open, &t), None, "purpose is signed");
        assert_eq!(Signer::new(b"other").verify(Purpose::Click, &t), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        bytes[7] ^= 1; // message 43
        assert_eq!(s.verify(Purpose::Click, &URL_SAFE_NO_PAD.encode(&bytes)), None);
        assert_eq!(s.verify(Purpose::Click, "garbage"), None);
        assert_eq!(s.verify(Purpose::Click, ""), None);
        assert!(!t.contains('='));
    }

    #[test]
    fn links_are_rewritten_in_order_keeping_the_original() {
        let html = r#"<p><a href="https://shop.example/a?utm_source=news&amp;x=1">A</a>
            <A class="b" HREF='https://shop.example/b'>B</A> <a href="mailto:x@y">mail</a>
            <a href="https://shop.example/c" data-nudge-track="off">C</a><abbr>no</abbr><a name="x">anchor</a></p>"#;
        let (out, urls) = rewrite_links(html, |i, _| Some(format!("https://t.example/c/{i}?a=1&b=2")));
        assert_eq!(
            urls,
            ["https://shop.example/a?utm_source=news&x=1", "https://shop.example/b"]
        );
        assert!(
            out.contains(r#"<a href="https://t.example/c/0?a=1&amp;b=2">A</a>"#),
            "{out}"
        );
        assert!(out.contains(r#"HREF='https://t.example/c/1?a=1&amp;b=2'"#), "{out}");
        assert!(
            out.contains("mailto:x@y") && out.contains("https://shop.example/c"),
            "{out}"
        );
        assert!(out.contains("<abbr>no</abbr>"));
    }

    #[test]
    fn pixel_goes_before_body_end() {
        assert_eq!(
            add_pixel("<html><body><p>x</p></body></html>", "https://t/o/1"),
            "<html><body><p>x</p><img src=\"https://t/o/1\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\"></body></html>"
        );
    }
}
