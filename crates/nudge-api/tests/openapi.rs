//! The OpenAPI document served at `/api/v1/openapi.json` must describe exactly the
//! routes of `nudge_api::router()` and the error codes of `nudge_api::error::ERROR_CODES`.

use nudge_api::OPENAPI_JSON;
use nudge_api::error::ERROR_CODES;
use serde_json::Value;
use std::collections::BTreeSet;

/// Every route of `router()` in `src/lib.rs`, as (method, OpenAPI path). Keep in step
/// with the router: a route added there must be added here and to `openapi.json`.
const ROUTES: &[(&str, &str)] = &[
    // Tracking API.
    ("post", "/v1/identify"),
    ("post", "/v1/track"),
    ("post", "/v1/page"),
    ("post", "/v1/screen"),
    ("post", "/v1/group"),
    ("post", "/v1/alias"),
    ("post", "/v1/batch"),
    ("post", "/v1/import"),
    // The same for Segment's browser library (short forms, CORS), and its settings.
    ("post", "/v1/i"),
    ("post", "/v1/t"),
    ("post", "/v1/p"),
    ("post", "/v1/s"),
    ("post", "/v1/g"),
    ("post", "/v1/a"),
    ("post", "/v1/b"),
    ("get", "/v1/projects/{key}/settings"),
    // Browser push subscriptions (write key; the VAPID key is public).
    ("post", "/v1/push/subscriptions"),
    ("delete", "/v1/push/subscriptions"),
    ("get", "/v1/push/vapid-public-key"),
    // Admin API.
    ("get", "/api/v1/contacts"),
    ("get", "/api/v1/contacts/lookup"),
    ("post", "/api/v1/contacts/import"),
    ("get", "/api/v1/contacts/export"),
    ("get", "/api/v1/contacts/{id}"),
    ("patch", "/api/v1/contacts/{id}"),
    ("delete", "/api/v1/contacts/{id}"),
    ("get", "/api/v1/contacts/{id}/events"),
    ("get", "/api/v1/contacts/{id}/export"),
    ("get", "/api/v1/contacts/{id}/segments"),
    ("get", "/api/v1/contacts/{id}/scores"),
    ("get", "/api/v1/contacts/{id}/send-time"),
    ("get", "/api/v1/scoring-rules"),
    ("post", "/api/v1/scoring-rules"),
    ("get", "/api/v1/scoring-rules/{id}"),
    ("put", "/api/v1/scoring-rules/{id}"),
    ("delete", "/api/v1/scoring-rules/{id}"),
    ("get", "/api/v1/scores"),
    ("put", "/api/v1/scores/{name}"),
    ("post", "/api/v1/predictions/fit"),
    ("get", "/api/v1/predictions/model"),
    // Product recommendations.
    ("get", "/api/v1/products"),
    ("post", "/api/v1/products/import"),
    ("get", "/api/v1/products/{id}"),
    ("put", "/api/v1/products/{id}"),
    ("delete", "/api/v1/products/{id}"),
    ("get", "/api/v1/products/{id}/similar"),
    ("get", "/api/v1/contacts/{id}/recommendations"),
    ("post", "/api/v1/recommendations/refresh"),
    ("get", "/api/v1/recommendations/model"),
    ("delete", "/api/v1/scores/{name}"),
    ("get", "/api/v1/contacts/{id}/push-subscriptions"),
    ("get", "/api/v1/segments"),
    ("post", "/api/v1/segments"),
    ("post", "/api/v1/segments/preview"),
    ("get", "/api/v1/segments/ready-made"),
    ("post", "/api/v1/segments/ready-made/{key}"),
    ("get", "/api/v1/segments/{id}"),
    ("put", "/api/v1/segments/{id}"),
    ("delete", "/api/v1/segments/{id}"),
    ("get", "/api/v1/segments/{id}/members"),
    ("get", "/api/v1/segments/{id}/sizes"),
    ("get", "/api/v1/templates"),
    ("post", "/api/v1/templates"),
    ("post", "/api/v1/templates/preview"),
    ("get", "/api/v1/templates/{id}"),
    ("put", "/api/v1/templates/{id}"),
    ("delete", "/api/v1/templates/{id}"),
    ("get", "/api/v1/templates/{id}/versions"),
    ("post", "/api/v1/templates/{id}/preview"),
    ("get", "/api/v1/messages"),
    ("post", "/api/v1/messages"),
    ("get", "/api/v1/messages/{id}"),
    ("get", "/api/v1/channels"),
    ("put", "/api/v1/channels/{kind}"),
    ("delete", "/api/v1/channels/{kind}"),
    ("get", "/api/v1/suppressions"),
    ("post", "/api/v1/suppressions"),
    ("delete", "/api/v1/suppressions/{channel}/{address}"),
    ("post", "/api/v1/bounces"),
    ("get", "/api/v1/journeys"),
    ("post", "/api/v1/journeys"),
    ("post", "/api/v1/journeys/validate"),
    ("get", "/api/v1/journeys/ready-made"),
    ("post", "/api/v1/journeys/ready-made/{key}"),
    ("get", "/api/v1/journeys/{id}"),
    ("put", "/api/v1/journeys/{id}"),
    ("post", "/api/v1/journeys/{id}/publish"),
    ("post", "/api/v1/journeys/{id}/{action}"),
    ("post", "/api/v1/journeys/{id}/runs"),
    ("post", "/api/v1/journeys/{id}/dry-run"),
    ("get", "/api/v1/contacts/{id}/runs"),
    ("get", "/api/v1/reports"),
    ("get", "/api/v1/reports/series"),
    ("post", "/api/v1/campaigns/{id}/test"),
    ("get", "/api/v1/conversion-settings"),
    ("put", "/api/v1/conversion-settings"),
    ("get", "/api/v1/retention-settings"),
    ("put", "/api/v1/retention-settings"),
    ("get", "/api/v1/frequency-caps"),
    ("put", "/api/v1/frequency-caps"),
    ("get", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns/validate"),
    ("get", "/api/v1/campaigns/{id}"),
    ("put", "/api/v1/campaigns/{id}"),
    ("delete", "/api/v1/campaigns/{id}"),
    ("post", "/api/v1/campaigns/{id}/send"),
    ("post", "/api/v1/campaigns/{id}/pause"),
    ("post", "/api/v1/campaigns/{id}/resume"),
    ("post", "/api/v1/campaigns/{id}/cancel"),
    ("post", "/api/v1/campaigns/{id}/winner"),
    ("get", "/api/v1/campaigns/{id}/report"),
    ("get", "/api/v1/forms"),
    ("post", "/api/v1/forms"),
    ("get", "/api/v1/forms/{id}"),
    ("put", "/api/v1/forms/{id}"),
    ("delete", "/api/v1/forms/{id}"),
    ("get", "/api/v1/forms/{id}/report"),
    ("get", "/api/v1/forms/{id}/submissions"),
    ("get", "/api/v1/forms/{id}/submissions.csv"),
    ("post", "/api/v1/subscriptions"),
    ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"),
    ("delete", "/api/v1/keys/{id}"),
    ("put", "/api/v1/keys/{id}/browser"),
    ("get", "/api/v1/ops/leases"),
    // Public.
    ("get", "/api/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    // Public message links (signed tokens, no key).
    ("get", "/t/o/{token}"),
    ("get", "/t/c/{token}"),
    ("get", "/u/{token}"),
    ("post", "/u/{token}"),
    ("get", "/confirm/{token}"),
    ("post", "/confirm/{token}"),
    ("post", "/hooks/{channel}/receipts"),
    ("get", "/p/{token}"),
    ("post", "/p/{token}"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn doc() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
}

/// All (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .unwrap_or_else(|| panic!("path item {path} is an object"));
        for (method, op) in item {
            if METHODS.contains(&method.as_str()) {
                ops.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

/// Follows a local `$ref` (`#/components/...`) if `v` is one.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve_pointer(doc, r),
        None => v,
    }
}

/// The schema a local `$ref` string (`#/components/...`) points at.
fn pointed<'a>(doc: &'a Value, r: &Value) -> &'a Value {
    let r = r.as_str().unwrap_or_else(|| panic!("$ref {r} is a string"));
    resolve_pointer(doc, r)
}

fn resolve_pointer<'a>(doc: &'a Value, r: &str) -> &'a Value {
    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
    doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}"))
}

#[test]
fn is_openapi_3_1() {
    let doc = doc();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3.1."), "expected OpenAPI 3.1.x, got {version}");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
}

#[test]
fn documents_exactly_the_routes_of_the_router() {
    let doc = doc();
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(m, p, _)| (m, p)).collect();
    let routed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(routed.len(), ROUTES.len(), "duplicate entries in ROUTES");
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes not documented: {missing:?}; documented but not routed: {extra:?}"
    );
}

#[test]
fn error_schema_lists_every_error_code() {
    let doc = doc();
    let error = &doc["components"]["schemas"]["Error"];
    let codes: BTreeSet<&str> = error["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .expect("Error.error.code has an enum")
        .iter()
        .map(|v| v.as_str().expect("error codes are strings"))
        .collect();
    let table: BTreeSet<&str> = ERROR_CODES.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(codes, table, "the Error schema's code enum must equal ERROR_CODES");
    let required = error["properties"]["error"]["required"]
        .as_array()
        .expect("Error.error.required");
    for field in ["code", "message"] {
        assert!(
            required.iter().any(|v| v == field),
            "Error.error.{field} must be required"
        );
    }
}

#[test]
fn every_operation_has_a_success_response_and_admin_ones_a_401() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has responses"));
        assert!(
            // A redirect is the success of the click-tracking link.
            responses
                .keys()
                .any(|s| (s.starts_with('2') || s == "302") && s.len() == 3),
            "{method} {path} has no 2xx (or redirect) response"
        );
        for (status, r) in responses {
            let r = resolve(&doc, r);
            assert!(
                r["description"].is_string(),
                "{method} {path} {status}: response needs a description"
            );
        }
        if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
            assert!(responses.contains_key("401"), "{method} {path} has no 401 response");
            assert_eq!(
                op["security"],
                serde_json::json!([{"adminKey": []}]),
                "{method} {path} must need the admin key"
            );
        }
        // The settings document's key is its path.
        if path.starts_with("/v1/") && path != "/v1/push/vapid-public-key" && !path.starts_with("/v1/projects/") {
            assert!(responses.contains_key("401"), "{method} {path} has no 401 response");
            assert_eq!(
                op["security"],
                serde_json::json!([{"writeKey": []}]),
                "{method} {path} must need a write key"
            );
        }
    }
}

#[test]
fn security_schemes_and_public_routes() {
    let doc = doc();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["writeKey"]["type"], "http");
    assert_eq!(schemes["writeKey"]["scheme"], "basic");
    assert_eq!(schemes["adminKey"]["type"], "http");
    assert_eq!(schemes["adminKey"]["scheme"], "bearer");
    for path in [
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/push/vapid-public-key",
    ] {
        assert_eq!(
            doc["paths"][path]["get"]["security"],
            serde_json::json!([]),
            "{path} must be public"
        );
    }
}

#[test]
fn all_local_refs_resolve() {
    fn walk(doc: &Value, v: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
                    assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
                }
                m.values().for_each(|x| walk(doc, x));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(doc, x)),
            _ => {}
        }
    }
    let doc = doc();
    walk(&doc, &doc);
    for name in [
        "Contact",
        "Event",
        "ApiKey",
        "Error",
        "Identify",
        "Track",
        "Page",
        "Screen",
        "Group",
        "Alias",
        "Batch",
        "Segment",
        "NewSegment",
        "SegmentCondition",
        "SegmentPreview",
        "SegmentSizes",
        "ContactSegments",
    ] {
        let schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "component schema {name} is missing");
        assert!(
            schema.get("example").is_some(),
            "component schema {name} has no example"
        );
    }
}

/// `SegmentCondition` is a `oneOf` over the node types with `type` as discriminator:
/// every variant is mapped, and the ready-made definitions (serialized as the API
/// returns them) use only node types and keys the schema declares.
#[test]
fn segment_condition_schema_matches_the_condition_language() {
    let doc = doc();
    let condition = &doc["components"]["schemas"]["SegmentCondition"];
    assert_eq!(condition["discriminator"]["propertyName"], "type");
    let mapping = condition["discriminator"]["mapping"]
        .as_object()
        .expect("SegmentCondition has a discriminator mapping");
    let variants: BTreeSet<&str> = condition["oneOf"]
        .as_array()
        .expect("SegmentCondition is a oneOf")
        .iter()
        .map(|v| v["$ref"].as_str().expect("oneOf items are $refs"))
        .collect();
    let mapped: BTreeSet<&str> = mapping.values().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(variants, mapped, "every oneOf variant is in the mapping and back");
    for (ty, target) in mapping {
        let schema = pointed(&doc, target);
        assert_eq!(schema["properties"]["type"]["const"], *ty, "{target} has `type` {ty}");
    }

    fn check(doc: &Value, mapping: &serde_json::Map<String, Value>, node: &Value, path: &str) {
        let ty = node["type"].as_str().unwrap_or_else(|| panic!("{path}: no type"));
        let target = mapping
            .get(ty)
            .unwrap_or_else(|| panic!("{path}: node type {ty} is not in the SegmentCondition mapping"));
        let schema = pointed(doc, target);
        let node = node.as_object().unwrap();
        for key in node.keys() {
            assert!(
                schema["properties"].get(key).is_some(),
                "{path}: key {key} of a {ty} node is not in {target}"
            );
        }
        for key in schema["required"].as_array().unwrap() {
            assert!(
                node.contains_key(key.as_str().unwrap()),
                "{path}: {ty} node lacks {key}"
            );
        }
        if let Some(Value::Array(items)) = node.get("conditions") {
            for (i, c) in items.iter().enumerate() {
                check(doc, mapping, c, &format!("{path}.conditions[{i}]"));
            }
        }
        if let Some(inner) = node.get("condition") {
            check(doc, mapping, inner, &format!("{path}.condition"));
        }
    }
    for r in nudge_core::segment::ready_made() {
        let def = serde_json::to_value(&r.definition).unwrap();
        check(&doc, mapping, &def, r.key);
    }
}
