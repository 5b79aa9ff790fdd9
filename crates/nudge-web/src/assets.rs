//! The UI's static files, compiled into the binary: the stylesheet, the UI's own
//! script and the vendored htmx. Each is served gzip-compressed when the browser
//! accepts it, with a strong ETag; pages link them as `/assets/{name}?v={etag}`, so
//! browsers may cache them for a year and still see a new build at once.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::OnceLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    raw: &'static [u8],
    gzip: Vec<u8>,
    etag: String,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "forms.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/forms.css"),
    ),
    (
        "forms.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/forms.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/htmx.min.js"),
    ),
];

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content_type, raw)| {
                let mut gz = GzEncoder::new(Vec::new(), Compression::best());
                let _ = gz.write_all(raw);
                let gzip = gz.finish().unwrap_or_default();
                let etag = hex::encode(&Sha256::digest(raw)[..8]);
                Asset {
                    name,
                    content_type,
                    raw,
                    gzip,
                    etag,
                }
            })
            .collect()
    })
}

/// The URL of an asset, versioned by its content.
pub fn url(name: &str) -> String {
    match assets().iter().find(|a| a.name == name) {
        Some(a) => format!("/assets/{}?v={}", a.name, a.etag),
        None => format!("/assets/{name}"),
    }
}

/// Bytes a page downloads for its scripts and styles, compressed (for the budget
/// `nudge bench ui` reports).
pub fn compressed_total() -> usize {
    assets().iter().map(|a| a.gzip.len()).sum()
}

/// `GET /assets/{name}`
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = assets().iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", asset.etag);
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    if gzip_ok {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (h, asset.gzip.clone()).into_response()
    } else {
        (h, asset.raw).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_compresses_and_has_a_versioned_url() {
        for a in assets() {
            assert!(!a.gzip.is_empty() && a.gzip.len() < a.raw.len(), "{}", a.name);
            assert!(url(a.name).contains(&a.etag));
        }
        assert!(compressed_total() < 100 * 1024, "{} bytes", compressed_total());
    }
}
