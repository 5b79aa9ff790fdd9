//! The Segment-compatible HTTP Tracking API under `/v1`.

use crate::error::ApiError;
use crate::{AppState, keys};
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use nudge_core::call::MAX_BATCH_BYTES;
use nudge_core::{CallKind, Received, parse_batch, parse_single};
use nudge_store::KeyKind;
use serde_json::{Value, json};
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

/// `POST /v1/identify`, `/v1/track`, ...: one message of the given type.
pub async fn single(state: State<AppState>, kind: CallKind, req: Request) -> Result<Json<Value>, ApiError> {
    accept(state, Some(kind), req).await
}

/// `POST /v1/batch` and `/v1/import`.
pub async fn batch(state: State<AppState>, req: Request) -> Result<Json<Value>, ApiError> {
    accept(state, None, req).await
}

async fn accept(State(state): State<AppState>, kind: Option<CallKind>, req: Request) -> Result<Json<Value>, ApiError> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied();
    // A key in the Authorization header is checked before the body is even read.
    let header_key = keys::basic_username(&headers);
    if let Some(k) = &header_key {
        keys::verify(&*state.store, k, KeyKind::Write).await?;
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
    if header_key.is_none() {
        let Some(k) = &parsed.write_key else {
            return Err(ApiError::unauthorized(
                "missing write key: send it as the HTTP Basic username or as `writeKey` in the body",
            ));
        };
        keys::verify(&*state.store, k, KeyKind::Write).await?;
    }
    for m in &parsed.messages {
        state.metrics.ingested(m.kind);
    }
    state.ingestor.submit(parsed.messages).await?;
    state.segments.wake();
    if let Some(j) = &state.journeys {
        j.wake();
    }
    Ok(Json(json!({"success": true})))
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
