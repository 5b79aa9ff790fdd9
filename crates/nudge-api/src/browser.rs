//! What Segment's browser library (`@segment/analytics-next`, analytics.js) needs
//! from Nudge, so a website switches by changing its snippet: the library itself
//! (vendored, see `scripts/update-analytics-js`) with the write key embedded, its
//! lazily loaded chunks, the settings document it fetches first, the short
//! endpoints it posts to (`/v1/t`, `/v1/p`, ... `/v1/b`, handled by
//! [`crate::tracking`]) and the CORS answers a browser asks for.
//!
//! CORS: a preflight carries no key, so it is answered for an origin some active
//! write key allows; the request that follows is checked against its own key's
//! origins (`BrowserAccess`). A refused origin gets `403` without
//! `Access-Control-Allow-Origin`, so the page cannot read the answer either.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nudge_store::{ApiKey, KeyKind};
use serde_json::json;
use sha2::{Digest, Sha256};

mod vendored {
    include!("../vendor/analytics-next/bundles.rs");
}

/// The standalone build; `__WRITE_KEY__` is replaced by the key it is served for.
const STANDALONE: &str = include_str!("../vendor/analytics-next/standalone.js");
/// The vendored version.
pub const VERSION: &str = include_str!("../vendor/analytics-next/VERSION");

/// The headers the library sends (besides the CORS-safelisted ones).
const ALLOWED_HEADERS: &str = "content-type, authorization, x-retry-count";

/// The `Origin` of a request, when a browser sent one (`null` counts as none).
pub fn origin(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|o| o != "null")
}

/// Adds the headers that let a page of `origin` read the answer.
pub fn allow(resp: &mut Response, origin: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Refuses a page of `origin` that `key` does not allow.
pub fn check_origin(key: &ApiKey, origin: Option<&str>) -> Result<(), ApiError> {
    match origin {
        Some(o)
            if !key
                .browser
                .allows(&nudge_app::keys::normalise_origin(o).unwrap_or_default()) =>
        {
            Err(ApiError::new(
                "origin_not_allowed",
                format!("pages of {o} may not send with this write key; add the origin to the key's allowed_origins"),
            ))
        }
        _ => Ok(()),
    }
}

/// `OPTIONS` on the browser endpoints and the settings document: the preflight.
pub async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(origin) = origin(&headers) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    match state.app().origin_may_send(&origin).await {
        Ok(true) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            allow(&mut resp, &origin);
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            resp
        }
        Ok(false) => StatusCode::FORBIDDEN.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A write key as it appears in a path: the characters Nudge's keys are made of (a
/// path that cannot be a key is an unknown key).
fn key_in_path(raw: &str) -> Result<&str, ApiError> {
    if raw.is_empty() || raw.len() > 200 || !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::unauthorized("unknown or revoked key"));
    }
    Ok(raw)
}

/// `GET /v1/projects/{writeKey}/settings`: what the library reads before anything
/// else: Nudge as its one destination (`Segment.io` with `apiHost` here), no remote
/// plugins, no metrics sent anywhere. Cached by `ETag`.
pub async fn settings(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key_text = key_in_path(&raw)?;
    let key = nudge_app::keys::verify(&*state.store, key_text, KeyKind::Write).await?;
    let origin = origin(&headers);
    check_origin(&key, origin.as_deref())?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1:8080");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .map(str::to_string)
        .or_else(|| {
            state
                .messaging
                .as_ref()
                .and_then(|m| m.public_url().split_once("://").map(|(s, _)| s.to_string()))
        })
        .unwrap_or_else(|| "http".into());
    let body = json!({
        "integrations": {
            "Segment.io": {
                "apiKey": key_text,
                "apiHost": format!("{host}/v1"),
                "protocol": scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]}
            }
        },
        "plan": {"track": {"__default": {"enabled": true, "integrations": {}}}, "identify": {"__default": {"enabled": true}}, "group": {"__default": {"enabled": true}}},
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
        "consentSettings": {"allCategories": [], "hasUnmappedDestinations": false}
    })
    .to_string();
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..32]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    if let Some(o) = origin {
        allow(&mut resp, &o);
    }
    Ok(resp)
}

fn javascript(body: String, max_age: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(max_age));
    resp.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    resp
}

/// `GET /analytics.js/v1/{writeKey}/analytics.min.js`: the library with the key
/// embedded (as Segment's CDN serves it), for an active write key.
pub async fn library(State(state): State<AppState>, Path((raw, file)): Path<(String, String)>) -> Response {
    if file != "analytics.min.js" && file != "analytics.js" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let key = match key_in_path(&raw) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = nudge_app::keys::verify(&*state.store, key, KeyKind::Write).await {
        return ApiError::from(e).into_response();
    }
    javascript(
        STANDALONE.replacen("\"__WRITE_KEY__\"", &format!("\"{key}\""), 1),
        "public, max-age=300",
    )
}

/// `GET /analytics-next/bundles/{file}`: a chunk the library loads when it needs it.
pub async fn bundle(Path(file): Path<String>) -> Response {
    match vendored::BUNDLES.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => javascript((*body).to_string(), "public, max-age=31536000, immutable"),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The snippet a site pastes into its pages (`base`: where Nudge answers, as the
/// browser reaches it).
pub fn snippet(base: &str, write_key: &str) -> String {
    let base = base.trim_end_matches('/');
    format!(
        r#"<script>
  !function(){{var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");else{{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group","track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){{return function(){{if(window[i].initialized)return window[i][e].apply(window[i],arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1){{var c=document.querySelector("link[rel='canonical']");n.push({{__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer}})}}n.unshift(e);analytics.push(n);return analytics}}}};for(var n=0;n<analytics.methods.length;n++){{var key=analytics.methods[n];analytics[key]=analytics.factory(key)}}analytics.load=function(key,n){{var t=document.createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);t.src="{base}/analytics.js/v1/"+key+"/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=n}};analytics._writeKey="{write_key}";analytics._cdn="{base}";analytics.SNIPPET_VERSION="5.2.1";
  analytics.load("{write_key}");
  analytics.page();
  }}}}();
</script>"#
    )
}
