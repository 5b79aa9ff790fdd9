//! The Segment-compatible HTTP Tracking API under `/v1`.

use crate::error::ApiError;
use crate::{AppState, browser, keys};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use nudge_core::call::MAX_BATCH_BYTES;
use nudge_core::{CallKind, Received, parse_batch, parse_single};
use nudge_store::KeyKind;
use serde_json::json;
use std::net::SocketAddr;

fn too_large() -> ApiError {
    ApiError::new(
        "batch_too_large",
        format!("request body is over the limit of {MAX_BATCH_BYTES} bytes"),
    )
}

/// Reads at most the batch limit plus one byte, so an oversized body is reported by
/// the parser with Segment's limit in the message instead of a bare 413. Bodies sent
/// with `Content-Encoding: gzip` (an option of Segment's libraries) are decompressed,
/// and the limit applies to the decompressed JSON.
async fn body_bytes(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let raw = axum::body::to_bytes(body, MAX_BATCH_BYTES + 1)
        .await
        .map_err(|_| too_large())?;
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            let decoder = flate2::read::GzDecoder::new(&raw[..]);
            std::io::Read::read_to_end(&mut std::io::Read::take(decoder, MAX_BATCH_BYTES as u64 + 1), &mut out)
                .map_err(|e| ApiError::new("malformed_json", format!("request body is not valid gzip: {e}")))?;
            Ok(out.into())
        }
        Some(other) => Err(ApiError::invalid(
            "Content-Encoding",
            format!("unsupported Content-Encoding {other:?}; send plain JSON or gzip"),
        )),
    }
}

/// Which endpoints a call came through: the long forms servers use (`/v1/track`,
/// `/v1/batch`, ...), or the short forms Segment's browser library posts to
/// (`/v1/t`, ... `/v1/b`), which answer with CORS headers and check the page's origin
/// against the key's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Server,
    Browser,
}

/// `POST /v1/identify`, `/v1/track`, ... (and `/v1/i`, `/v1/t`, ...): one message of
/// the given type.
pub async fn single(
    state: State<AppState>,
    kind: CallKind,
    surface: Surface,
    req: Request,
) -> Result<Response, ApiError> {
    accept(state, Some(kind), surface, req).await
}

/// `POST /v1/batch`, `/v1/import` and `/v1/b`.
pub async fn batch(state: State<AppState>, surface: Surface, req: Request) -> Result<Response, ApiError> {
    accept(state, None, surface, req).await
}

async fn accept(
    State(state): State<AppState>,
    kind: Option<CallKind>,
    surface: Surface,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied();
    let origin = browser::origin(&headers);
    // A key in the Authorization header is checked before the body is even read.
    let header_key = keys::basic_username(&headers);
    let mut key = None;
    if let Some(k) = &header_key {
        key = Some(keys::verify(&*state.store, k, KeyKind::Write).await?);
    }
    let bytes = body_bytes(&headers, body).await?;
    let received = Received {
        at: state.clock.now(),
        ip: client_ip(&headers, addr),
    };
    let mut new_id = || format!("nudge-{}", hex::encode(rand::random::<[u8; 16]>()));
    let parsed = match kind {
        Some(kind) => parse_single(kind, &bytes, &received, &mut new_id)?,
        None => parse_batch(&bytes, &received, &mut new_id)?,
    };
    let key = match key {
        Some(k) => k,
        None => {
            let Some(k) = &parsed.write_key else {
                return Err(ApiError::unauthorized(
                    "missing write key: send it as the HTTP Basic username or as `writeKey` in the body",
                ));
            };
            keys::verify(&*state.store, k, KeyKind::Write).await?
        }
    };
    match surface {
        Surface::Server if key.browser.browser_only => {
            return Err(ApiError::new(
                "browser_key",
                "this write key is restricted to the browser endpoints (/v1/t, /v1/p, ... /v1/b)",
            ));
        }
        Surface::Server => {}
        Surface::Browser => browser::check_origin(&key, origin.as_deref())?,
    }
    for m in &parsed.messages {
        state.metrics.ingested(m.kind);
    }
    state.ingestor.submit(parsed.messages).await?;
    state.segments.wake();
    if let Some(j) = &state.journeys {
        j.wake();
    }
    let mut resp = Json(json!({"success": true})).into_response();
    if let (Surface::Browser, Some(o)) = (surface, &origin) {
        browser::allow(&mut resp, o);
    }
    Ok(resp)
}

/// `context.ip` defaults to the first `X-Forwarded-For` address, else the peer.
fn client_ip(headers: &HeaderMap, addr: Option<ConnectInfo<SocketAddr>>) -> Option<String> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| addr.map(|ConnectInfo(a)| a.ip().to_string()))
}
